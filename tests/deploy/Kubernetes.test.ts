import { Deployment } from "kubernetes-models/apps/v1"
import { PodDisruptionBudget } from "kubernetes-models/policy/v1"
import { ConfigMap, Secret, Service } from "kubernetes-models/v1"
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { parseAllDocuments } from "yaml"
import { settingNames } from "../../src/Settings.ts"

const folder = join(import.meta.dirname, "../../deploy/kubernetes")

// Each kind the manifests may use, with the schema its objects are validated against.
const models = {
  "v1/ConfigMap": ConfigMap,
  "v1/Secret": Secret,
  "v1/Service": Service,
  "apps/v1/Deployment": Deployment,
  "policy/v1/PodDisruptionBudget": PodDisruptionBudget
} as const

type Manifest = { readonly file: string; readonly object: Record<string, unknown> }

const manifests: ReadonlyArray<Manifest> = readdirSync(folder)
  .filter((file) => file.endsWith(".yaml") && file !== "kustomization.yaml")
  .flatMap((file) =>
    parseAllDocuments(readFileSync(join(folder, file), "utf8")).map((document) => {
      if (document.errors.length > 0) throw new Error(`${file}: ${document.errors[0]?.message}`)
      return { file, object: document.toJS() as Record<string, unknown> }
    })
  )

/** Validates `object` against the Kubernetes schema of its kind; throws on any problem. */
const validate = (object: Record<string, unknown>) => {
  const model = models[`${String(object.apiVersion)}/${String(object.kind)}` as keyof typeof models]
  if (model === undefined)
    throw new Error(`no schema for ${String(object.apiVersion)} ${String(object.kind)}`)
  new model(object as never).validate()
}

const one = <T>(kind: string, name?: string): T => {
  const found = manifests.filter(
    ({ object }) =>
      object.kind === kind && (name === undefined || (object.metadata as { name?: string }).name === name)
  )
  expect(found, `one ${kind} ${name ?? ""}`).toHaveLength(1)
  return found[0]!.object as T
}

const deployment = () => one<Deployment>("Deployment")
const container = () => deployment().spec!.template.spec!.containers[0]!

describe("deploy/kubernetes", () => {
  it("every manifest is valid against the Kubernetes schemas, and the validator catches a broken one", () => {
    expect(manifests.length).toBeGreaterThanOrEqual(6)
    for (const { file, object } of manifests) expect(() => validate(object), file).not.toThrow()
    const broken = structuredClone(deployment()) as unknown as { spec: { replicas: unknown } }
    broken.spec.replicas = "three"
    expect(() => validate(broken as never)).toThrow()
  })

  it("the kustomization lists every manifest but the example Secret", () => {
    const kustomization = parseAllDocuments(
      readFileSync(join(folder, "kustomization.yaml"), "utf8")
    )[0]!.toJS() as {
      resources: ReadonlyArray<string>
    }
    const files = [...new Set(manifests.map(({ file }) => file))].filter(
      (file) => file !== "secret.example.yaml"
    )
    expect([...kustomization.resources].sort()).toEqual(files.sort())
  })

  it("probes the health endpoints, and the grace period fits preStop plus the drain", () => {
    const node = container()
    expect(node.readinessProbe?.httpGet?.path).toBe("/api/health/ready")
    expect(node.livenessProbe?.httpGet?.path).toBe("/api/health/live")
    const preStop = node.lifecycle?.preStop?.sleep?.seconds ?? 0
    expect(preStop).toBeGreaterThan(0)
    // The HTTP server gives open requests 20 s (src/http/NodeServer.ts); handing over is within a lease TTL.
    expect(deployment().spec!.template.spec!.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(
      preStop + 20 + 5
    )
    expect(node.resources?.requests?.cpu).toBeDefined()
    expect(node.resources?.limits?.memory).toBeDefined()
  })

  it("takes its secret from the Secret, its settings from the ConfigMap, and the pod IP as FORWARD_HOST", () => {
    const node = container()
    const env = new Map((node.env ?? []).map((variable) => [variable.name, variable.valueFrom]))
    const secret = one<Secret>("Secret")
    for (const name of ["JWT_SECRET", "DATABASE_URL", "REDIS_URL"]) {
      expect(env.get(name)?.secretKeyRef?.name, name).toBe(secret.metadata?.name)
      expect(Object.keys(secret.stringData ?? {})).toContain(env.get(name)?.secretKeyRef?.key)
    }
    expect(env.get("FORWARD_HOST")?.fieldRef?.fieldPath).toBe("status.podIP")
    const config = one<ConfigMap>("ConfigMap")
    expect(node.envFrom?.[0]?.configMapRef?.name).toBe(config.metadata?.name)
    // A mistyped setting stops a node at start: every key must be one it reads.
    for (const key of Object.keys(config.data ?? {}))
      expect(settingNames.includes(key) || key.startsWith("OTEL_"), key).toBe(true)
  })

  it("the HTTP Service, the headless forward Service and the budget select the pods on named ports", () => {
    const labels = deployment().spec!.template.metadata!.labels!
    const selects = (selector: Record<string, string> | undefined) =>
      Object.entries(selector ?? {}).every(([key, value]) => labels[key] === value)
    const ports = new Map(container().ports!.map((port) => [port.name, port.containerPort]))
    const http = one<Service>("Service", "mincommerce")
    const forward = one<Service>("Service", "mincommerce-forward")
    expect(forward.spec?.clusterIP).toBe("None")
    for (const service of [http, forward]) {
      expect(selects(service.spec?.selector)).toBe(true)
      for (const port of service.spec?.ports ?? []) expect(ports.has(String(port.targetPort))).toBe(true)
    }
    expect(ports.get("forward")).toBe(4000)
    expect(selects(one<PodDisruptionBudget>("PodDisruptionBudget").spec?.selector?.matchLabels)).toBe(true)
  })
})
