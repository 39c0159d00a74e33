import { Context, Effect, Layer, Scope } from "effect"
import type { SaleId, UserId } from "../domain/Ids.ts"
import { NotSent, Peers, type ForwardResult } from "./ForwardClient.ts"
import * as ForwardServer from "./ForwardServer.ts"
import { linkKey } from "./Frames.ts"

export { NoAnswer, NotSent, type ForwardResult } from "./ForwardClient.ts"
export type { ForwardHandler, Replies } from "./ForwardServer.ts"

export interface LinkOptions {
  readonly host: string
  readonly port: number
  /** A forward not answered within this is abandoned (NoAnswer): the lease TTL. */
  readonly timeoutMillis: number
  /** The secret every node of the cluster shares: peers prove a key derived from it. */
  readonly sharedSecret: Uint8Array
}

/**
 * The node-to-node link: persistent connections to peers for purchases this node forwards,
 * and a listener for purchases peers forward here, both behind the cluster-key handshake.
 */
export class ForwardLink extends Context.Service<
  ForwardLink,
  {
    /**
     * Sends one purchase to the node at `address`; `resume` is called exactly once. A traced
     * purchase carries `trace` (trace id, sending span id) to the owner.
     */
    readonly send: (
      address: string,
      saleId: SaleId,
      userId: UserId,
      resume: (result: ForwardResult) => void,
      trace?: readonly [string, string]
    ) => void
    /** Takes forwarded purchases for `handle` until the scope closes; its host:port, if it listens. */
    readonly serve: (
      handle: ForwardServer.ForwardHandler
    ) => Effect.Effect<string | undefined, never, Scope.Scope>
  }
>()("mincommerce/cluster/ForwardLink") {
  static readonly layer = (options: LinkOptions) =>
    Layer.effect(
      ForwardLink,
      Effect.gen(function* () {
        const key = linkKey(options.sharedSecret)
        const peers = yield* Effect.acquireRelease(
          Effect.sync(() => new Peers(options.timeoutMillis, key)),
          (peers) => Effect.sync(() => peers.closeAll())
        )
        return ForwardLink.of({
          send: (address, saleId, userId, resume, trace) =>
            peers.to(address).send(saleId, userId, resume, trace),
          serve: (handle) =>
            Effect.acquireRelease(
              Effect.promise(() => ForwardServer.listen(options.host, options.port, key, handle)),
              (listener) => Effect.promise(() => listener.close())
            ).pipe(Effect.map((listener) => listener.address))
        })
      })
    )

  /** One node alone: nothing to forward to, nothing to listen for. */
  static readonly none = Layer.succeed(
    ForwardLink,
    ForwardLink.of({
      send: (address, _saleId, _userId, resume) => resume(new NotSent({ address })),
      serve: () => Effect.succeed(undefined)
    })
  )
}
