import cliProgress from "cli-progress"
import type { Ticker } from "./load.ts"

/** Shows one phase of the bench: a bar on a terminal, a start and an end line otherwise (CI). */
export interface PhaseProgress extends Ticker {
  readonly done: (summary: string) => void
}

const plain = (label: string, seconds: number): PhaseProgress => {
  console.log(`  ${label}: ${seconds} s ...`)
  return { onTick: () => undefined, done: (summary) => console.log(`  ${label}: ${summary}`) }
}

const bar = (label: string, seconds: number): PhaseProgress => {
  const progress = new cliProgress.SingleBar(
    {
      format: `  ${label.padEnd(34)} {bar} {elapsed}/{seconds} s | {requests} req | {purchased} sold`,
      barsize: 24,
      hideCursor: true,
      clearOnComplete: true
    },
    cliProgress.Presets.shades_classic
  )
  progress.start(seconds * 10, 0, { elapsed: "0.0", seconds, requests: 0, purchased: 0 })
  return {
    onTick: (elapsed, requests, purchased) =>
      progress.update(Math.min(seconds * 10, Math.round(elapsed * 10)), {
        elapsed: elapsed.toFixed(1),
        seconds,
        requests: requests.toLocaleString("en-US"),
        purchased: purchased.toLocaleString("en-US")
      }),
    done: (summary) => {
      progress.stop()
      console.log(`  ${label}: ${summary}`)
    }
  }
}

export const phaseProgress = (label: string, seconds: number): PhaseProgress =>
  process.stdout.isTTY === true ? bar(label, seconds) : plain(label, seconds)
