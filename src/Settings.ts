import { ByteSize, Config, ConfigProvider, Data, Duration, Effect, Option, Redacted, Schema } from "effect"
import { distance } from "fastest-levenshtein"

/**
 * Every setting a node reads from its environment, with the defaults that make a bare
 * `npm start` work: no DATABASE_URL means an embedded PostgreSQL in DATA_DIR.
 */
export const databaseUrl = Config.option(Config.Redacted("DATABASE_URL"))
export const dataDir = Config.String("DATA_DIR").pipe(Config.withDefault(".data"))

const positiveInt = (name: string) =>
  Config.schema(Schema.FiniteFromString.check(Schema.isInt(), Schema.isGreaterThanOrEqualTo(1)), name)

export const actorSettings = Config.all({
  mailboxCapacity: positiveInt("MAILBOX_CAPACITY").pipe(Config.withDefault(10_000)),
  maxBatchSize: positiveInt("MAX_BATCH_SIZE").pipe(Config.withDefault(4_000)),
  /** Group commits of one sale in flight at once, each in its own transaction. */
  commitsInFlight: positiveInt("COMMITS_IN_FLIGHT").pipe(Config.withDefault(3)),
  idleSeconds: positiveInt("ACTOR_IDLE_SECONDS").pipe(Config.withDefault(300))
})

export type ActorSettings = Config.Success<typeof actorSettings>

export const httpSettings = Config.all({
  // 0 asks the system for a free port (the log line says which).
  port: Config.schema(
    Schema.FiniteFromString.check(
      Schema.isInt(),
      Schema.isGreaterThanOrEqualTo(0),
      Schema.isLessThanOrEqualTo(65_535)
    ),
    "PORT"
  ).pipe(Config.withDefault(3000)),
  host: Config.String("HOST").pipe(Config.withDefault("127.0.0.1")),
  maxBodyBytes: Config.ByteSize("MAX_BODY_BYTES").pipe(Config.withDefault(ByteSize.kibibytes(16))),
  /** Origins allowed to call the API from a browser (comma-separated); none by default. */
  corsOrigins: Config.String("CORS_ORIGINS").pipe(
    Config.withDefault(""),
    Config.map((origins) =>
      origins
        .split(",")
        .map((origin) => origin.trim())
        .filter((origin) => origin.length > 0)
    )
  )
})

// The secret signs every session: one a laptop could guess is no secret.
const minSecretBytes = 32
const Secret = Schema.String.check(
  Schema.makeFilter(
    (value: string) =>
      Buffer.byteLength(value) >= minSecretBytes ||
      `must be at least ${minSecretBytes} bytes (e.g. \`openssl rand -hex 32\`)`
  )
)

const HttpUrl = Schema.String.check(
  Schema.makeFilter((value: string) => URL.canParse(value) || "must be an http(s) URL")
)

/**
 * Live events (SSE): watchers a node serves at most, the socket writes a second its events may
 * take (a change reaches a large audience as often as that allows; a change of status always
 * at once), and the period over which each watcher hears one heartbeat.
 */
export const liveSettings = Config.all({
  maxWatchers: positiveInt("MAX_WATCHERS").pipe(Config.withDefault(20_000)),
  writesPerSecond: positiveInt("LIVE_WRITES_PER_SECOND").pipe(Config.withDefault(5_000)),
  heartbeatSeconds: positiveInt("SSE_HEARTBEAT_SECONDS").pipe(Config.withDefault(30))
})

export type LiveSettings = Config.Success<typeof liveSettings>

export const authSettings = Config.all({
  /** Unset: a secret is generated once and kept in DATA_DIR. */
  jwtSecret: Config.option(Config.schema(Secret, "JWT_SECRET").pipe(Config.map(Redacted.make))),
  /** Lifetime of an access token; the storefront refreshes it unnoticed. */
  tokenTtlSeconds: positiveInt("TOKEN_TTL_SECONDS").pipe(Config.withDefault(900)),
  /** Lifetime of the refresh cookie: how long a buyer stays signed in without typing a password. */
  refreshTtlSeconds: positiveInt("REFRESH_TTL_SECONDS").pipe(Config.withDefault(7 * 86_400))
})

/**
 * The shop's identity provider: with AUTH_JWKS_URL, AUTH_ISSUER and AUTH_AUDIENCE set, its
 * access tokens are accepted. AUTH_ADMIN_CLAIM names the claim that carries the admin role
 * (a list that contains AUTH_ADMIN_ROLE, or that value itself); unset, the role is the database's.
 */
export const providerSettings = Config.all({
  jwksUrl: Config.option(Config.schema(HttpUrl, "AUTH_JWKS_URL")),
  issuer: Config.option(Config.String("AUTH_ISSUER")),
  audience: Config.option(Config.String("AUTH_AUDIENCE")),
  adminClaim: Config.option(Config.String("AUTH_ADMIN_CLAIM")),
  adminRole: Config.String("AUTH_ADMIN_ROLE").pipe(Config.withDefault("admin")),
  clockToleranceSeconds: Config.Int("AUTH_CLOCK_TOLERANCE_SECONDS").pipe(Config.withDefault(30))
}).pipe(
  Config.flatMap((settings) => {
    const set = [settings.jwksUrl, settings.issuer, settings.audience].filter(Option.isSome).length
    return set === 0 || set === 3
      ? Config.succeed(settings)
      : Config.fail(
          new ConfigProvider.SourceError({
            message: "AUTH_JWKS_URL, AUTH_ISSUER and AUTH_AUDIENCE: set all three or none"
          })
        )
  })
)

/**
 * Built-in accounts: sign-up is open by default, closed by default when an identity provider
 * is set (its buyers come from there); AUTH_SIGNUP=true|false says otherwise.
 */
export const signUpOpen = Config.all({
  signUp: Config.option(Config.Boolean("AUTH_SIGNUP")),
  jwksUrl: Config.option(Config.String("AUTH_JWKS_URL"))
}).pipe(Config.map(({ signUp, jwksUrl }) => Option.getOrElse(signUp, () => Option.isNone(jwksUrl))))

/**
 * Sign-in and sign-up limits, token buckets over AUTH_LIMIT_WINDOW: per address and per
 * account (every attempt), sign-ups per address, and failed sign-ins per account, which slow
 * a guesser down for at most one window without locking the buyer out for longer.
 */
export const authLimitSettings = Config.all({
  perAddress: Config.Int("AUTH_LIMIT_PER_ADDRESS").pipe(Config.withDefault(30)),
  perAccount: Config.Int("AUTH_LIMIT_PER_ACCOUNT").pipe(Config.withDefault(10)),
  signUpsPerAddress: Config.Int("AUTH_SIGNUPS_PER_ADDRESS").pipe(Config.withDefault(5)),
  failuresPerAccount: Config.Int("AUTH_FAILURES_PER_ACCOUNT").pipe(Config.withDefault(5)),
  window: Config.Duration("AUTH_LIMIT_WINDOW").pipe(Config.withDefault(Duration.minutes(1)))
})

export const logSettings = Config.all({
  level: Config.LogLevel("LOG_LEVEL").pipe(Config.withDefault("Info")),
  format: Config.Literals(["json", "pretty"], "LOG_FORMAT").pipe(Config.withDefault("json"))
})

/** Token buckets refilled over `window`; 0 turns a limit off. */
export const limitSettings = Config.all({
  perUser: Config.Int("RATE_LIMIT_PER_USER").pipe(Config.withDefault(20)),
  perAddress: Config.Int("RATE_LIMIT_PER_ADDRESS").pipe(Config.withDefault(0)),
  window: Config.Duration("RATE_LIMIT_WINDOW").pipe(Config.withDefault(Duration.seconds(10)))
})

/**
 * Ownership across nodes. Without REDIS_URL the node owns every sale itself; with it, sales
 * are leased in Redis and purchases for a sale owned elsewhere are forwarded to its owner.
 */
export const clusterSettings = Config.all({
  redisUrl: Config.option(Config.Redacted("REDIS_URL")),
  /** Prefix of every Redis key and channel, so several clusters can share one Redis. */
  redisPrefix: Config.String("REDIS_PREFIX").pipe(Config.withDefault("mincommerce:")),
  /** Unset: a random id per process start. */
  nodeId: Config.option(Config.String("NODE_ID")),
  /** Where this node takes forwarded purchases; 0 asks the system for a free port. */
  forwardPort: Config.Int("FORWARD_PORT").pipe(Config.withDefault(0)),
  forwardHost: Config.String("FORWARD_HOST").pipe(Config.withDefault("127.0.0.1")),
  /**
   * A sale's lease (and a node's directory entry) lives this long unless renewed. It also
   * bounds a forwarded purchase's wait: an owner silent for a lease's life may have lost it.
   */
  leaseTtlMillis: positiveInt("LEASE_TTL_MS").pipe(Config.withDefault(3_000))
})

export type ClusterSettings = Config.Success<typeof clusterSettings>

/**
 * Traces, off unless OTEL_EXPORTER_OTLP_ENDPOINT names an OTLP/HTTP collector (spans go to its
 * /v1/traces). OTEL_TRACES_SAMPLER_ARG is the share of requests traced that arrive without a
 * trace of their own; one that does keeps its caller's decision.
 */
export const tracingSettings = Config.all({
  endpoint: Config.String("OTEL_EXPORTER_OTLP_ENDPOINT").pipe(
    Config.withDefault(""),
    Config.flatMap((endpoint) => {
      if (endpoint.trim() === "") return Config.succeed(Option.none<string>())
      return URL.canParse(endpoint) && /^https?:/.test(endpoint)
        ? Config.succeed(Option.some(endpoint.trim()))
        : Config.fail(
            new ConfigProvider.SourceError({ message: "OTEL_EXPORTER_OTLP_ENDPOINT: must be an http(s) URL" })
          )
    })
  ),
  sampleRatio: Config.schema(
    Schema.FiniteFromString.check(Schema.isGreaterThanOrEqualTo(0), Schema.isLessThanOrEqualTo(1)),
    "OTEL_TRACES_SAMPLER_ARG"
  ).pipe(Config.withDefault(0.01)),
  serviceName: Config.String("OTEL_SERVICE_NAME").pipe(Config.withDefault("mincommerce"))
})

/**
 * Payments. PAYMENT_PROVIDER_URL names a development provider running elsewhere; unset, the
 * node starts one in its own process (the embedded demo). The key the node presents to the
 * provider and the secret the provider signs webhooks with are derived from the shared secret
 * unless set; a real provider issues both, so they are set from its dashboard.
 */
export const paymentSettings = Config.all({
  providerUrl: Config.option(Config.schema(HttpUrl, "PAYMENT_PROVIDER_URL")),
  providerKey: Config.option(Config.Redacted("PAYMENT_PROVIDER_KEY")),
  webhookSecret: Config.option(
    Config.schema(Secret, "PAYMENT_WEBHOOK_SECRET").pipe(Config.map(Redacted.make))
  ),
  /** How old (or how far ahead) a webhook's signature may be; a replay past it is refused. */
  webhookToleranceSeconds: positiveInt("PAYMENT_WEBHOOK_TOLERANCE_SECONDS").pipe(Config.withDefault(300)),
  /** The ISO 4217 currency of every sale's price (in its minor unit, priceCents). */
  currency: Config.schema(Schema.String.check(Schema.isPattern(/^[A-Z]{3}$/)), "PAYMENT_CURRENCY").pipe(
    Config.withDefault("USD")
  )
})

export type PaymentSettings = Config.Success<typeof paymentSettings>

/** Every variable a node reads; one that looks like a mistyped one of these stops the start. */
export const settingNames: ReadonlyArray<string> = [
  "DATABASE_URL",
  "DATA_DIR",
  "MAILBOX_CAPACITY",
  "MAX_BATCH_SIZE",
  "COMMITS_IN_FLIGHT",
  "ACTOR_IDLE_SECONDS",
  "PORT",
  "HOST",
  "MAX_BODY_BYTES",
  "CORS_ORIGINS",
  "MAX_WATCHERS",
  "LIVE_WRITES_PER_SECOND",
  "SSE_HEARTBEAT_SECONDS",
  "JWT_SECRET",
  "TOKEN_TTL_SECONDS",
  "REFRESH_TTL_SECONDS",
  "AUTH_SIGNUP",
  "AUTH_JWKS_URL",
  "AUTH_ISSUER",
  "AUTH_AUDIENCE",
  "AUTH_ADMIN_CLAIM",
  "AUTH_ADMIN_ROLE",
  "AUTH_CLOCK_TOLERANCE_SECONDS",
  "AUTH_LIMIT_PER_ADDRESS",
  "AUTH_LIMIT_PER_ACCOUNT",
  "AUTH_SIGNUPS_PER_ADDRESS",
  "AUTH_FAILURES_PER_ACCOUNT",
  "AUTH_LIMIT_WINDOW",
  "LOG_LEVEL",
  "LOG_FORMAT",
  "RATE_LIMIT_PER_USER",
  "RATE_LIMIT_PER_ADDRESS",
  "RATE_LIMIT_WINDOW",
  "REDIS_URL",
  "REDIS_PREFIX",
  "NODE_ID",
  "FORWARD_PORT",
  "FORWARD_HOST",
  "LEASE_TTL_MS",
  "OTEL_EXPORTER_OTLP_ENDPOINT",
  "OTEL_TRACES_SAMPLER_ARG",
  "OTEL_SERVICE_NAME",
  "PAYMENT_PROVIDER_URL",
  "PAYMENT_PROVIDER_KEY",
  "PAYMENT_WEBHOOK_SECRET",
  "PAYMENT_WEBHOOK_TOLERANCE_SECONDS",
  "PAYMENT_CURRENCY"
]

const everySetting: ReadonlyArray<Config.Config<unknown>> = [
  databaseUrl,
  dataDir,
  actorSettings,
  httpSettings,
  liveSettings,
  authSettings,
  providerSettings,
  signUpOpen,
  authLimitSettings,
  logSettings,
  limitSettings,
  clusterSettings,
  tracingSettings,
  paymentSettings
]

/** Why a node refuses to start: each problem names the variable and what is wrong with it. */
export class InvalidSettings extends Data.TaggedError("InvalidSettings")<{
  readonly problems: ReadonlyArray<string>
}> {
  override get message() {
    return `invalid settings:\n  ${this.problems.join("\n  ")}`
  }
}

// "Expected a string representing a finite number\n  at [\"PORT\"]" -> PORT: Expected ...
const describe = (message: string): string => {
  const at = /\n\s*at \[(.*)\]\s*$/.exec(message)
  const what = message.split("\n")[0] ?? message
  if (at?.[1] === undefined) return what
  const names = at[1].split(",").map((name) => name.trim().replace(/^"|"$/g, ""))
  return `${names.join(".")}: ${what}`
}

/**
 * Settings a node no longer reads, and what to do instead: left set, an operator would believe
 * they still did something, so the start stops.
 */
export const removedSettings: Readonly<Record<string, string>> = {
  ADMIN_EMAILS:
    "no longer makes anyone an admin (an email alone proves nothing); grant the role to an account with `npm run admin -- grant <email>` and unset ADMIN_EMAILS"
}

/** Variables named like a setting but not one: the likely typo, with the setting it meant. */
export const mistypedSettings = (
  env: Readonly<Record<string, string | undefined>>
): ReadonlyArray<string> => {
  const known = new Set(settingNames)
  const problems: Array<string> = []
  for (const name of Object.keys(env)) {
    if (known.has(name)) continue
    const removed = removedSettings[name]
    if (removed !== undefined) {
      problems.push(`${name}: removed: it ${removed}`)
      continue
    }
    // Short names collide by chance (HOME and HOST), so they must be one edit apart.
    const meant = settingNames.find((setting) => {
      const d = distance(name, setting)
      return d > 0 && d <= (setting.length >= 8 ? 2 : 1)
    })
    if (meant !== undefined) problems.push(`${name}: not a setting; did you mean ${meant}?`)
  }
  return problems
}

/**
 * Reads every setting once, before anything starts: a value that does not parse or a
 * variable that looks like a mistyped setting fails the start with all problems listed.
 */
export const check = Effect.gen(function* () {
  const problems = [...mistypedSettings(process.env)]
  for (const config of everySetting) {
    const read = yield* Effect.result(config)
    if (read._tag === "Failure") {
      const cause: unknown = read.failure.cause
      problems.push(describe(cause instanceof Error ? cause.message : read.failure.message))
    }
  }
  if (problems.length > 0) return yield* new InvalidSettings({ problems })
})
