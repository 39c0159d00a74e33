import { ESLint } from "eslint"
import { describe, expect, it } from "vitest"

const eslint = new ESLint()

/** The rule ids ESLint reports for `code` placed at `filePath` in the repository. */
const rulesBroken = async (filePath: string, code: string) => {
  const [result] = await eslint.lintText(code, { filePath })
  return (result?.messages ?? []).map((message) => message.ruleId)
}

describe("layering (npm run lint)", () => {
  it("refuses an import against the arrows, type-only imports included", async () => {
    expect(
      await rulesBroken("src/actors/Probe.ts", 'export { SaleRouter } from "../cluster/SaleRouter.ts"\n')
    ).toContain("no-restricted-imports")
    expect(
      await rulesBroken(
        "src/storage/Probe.ts",
        'import type { Api } from "../http/Api.ts"\nexport type A = Api\n'
      )
    ).toContain("no-restricted-imports")
    expect(await rulesBroken("src/domain/Probe.ts", 'export * from "../storage/OrderStore.ts"\n')).toContain(
      "no-restricted-imports"
    )
    expect(await rulesBroken("src/http/Probe.ts", 'export * from "../main.ts"\n')).toContain(
      "no-restricted-imports"
    )
    expect(await rulesBroken("src/payments/Probe.ts", 'export * from "../actors/SaleActor.ts"\n')).toContain(
      "no-restricted-imports"
    )
  })

  it("keeps payments and storage beside each other: neither imports the other", async () => {
    expect(
      await rulesBroken("src/payments/Probe.ts", 'export * from "../storage/OrderStore.ts"\n')
    ).toContain("no-restricted-imports")
    expect(
      await rulesBroken("src/storage/Probe.ts", 'export * from "../payments/PaymentProvider.ts"\n')
    ).toContain("no-restricted-imports")
  })

  it("allows imports that point down", async () => {
    expect(await rulesBroken("src/http/Probe.ts", 'export * from "../cluster/SaleRouter.ts"\n')).toEqual([])
    expect(await rulesBroken("src/cluster/Probe.ts", 'export * from "../actors/SaleActor.ts"\n')).toEqual([])
    expect(await rulesBroken("src/actors/Probe.ts", 'export * from "../storage/OrderStore.ts"\n')).toEqual([])
    expect(
      await rulesBroken("src/actors/Probe.ts", 'export * from "../payments/PaymentProvider.ts"\n')
    ).toEqual([])
    expect(await rulesBroken("src/payments/Probe.ts", 'export * from "../domain/Payments.ts"\n')).toEqual([])
  })
})
