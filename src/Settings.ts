import { Config } from "effect"

/**
 * Every setting a node reads from its environment, with the defaults that make a bare
 * `npm start` work: no DATABASE_URL means an embedded PostgreSQL in DATA_DIR.
 */
export const databaseUrl = Config.option(Config.Redacted("DATABASE_URL"))
export const dataDir = Config.String("DATA_DIR").pipe(Config.withDefault(".data"))

export const actorSettings = Config.all({
  mailboxCapacity: Config.Int("MAILBOX_CAPACITY").pipe(Config.withDefault(10_000)),
  maxBatchSize: Config.Int("MAX_BATCH_SIZE").pipe(Config.withDefault(2_000)),
  idleSeconds: Config.Int("ACTOR_IDLE_SECONDS").pipe(Config.withDefault(300))
})

export type ActorSettings = Config.Success<typeof actorSettings>
