import { Cause, Effect, Exit } from "effect"
import type { SaleActor } from "../actors/SaleActor.ts"
import type { SaleId, UserId } from "../domain/Ids.ts"
import { isRefusal, type Reply as ActorReply } from "../domain/Reply.ts"
import type * as Tracing from "../Tracing.ts"
import type { ForwardHandler, Replies } from "./ForwardLink.ts"
import { outcomeReply, Reply, type ReplyCode } from "./Frames.ts"
import type { OwnedSales } from "./OwnedSales.ts"

const answer = (replies: Replies, requestId: number, reply: ActorReply) => {
  if (!isRefusal(reply)) {
    const [code, value] = outcomeReply(reply)
    return replies.send(requestId, code, value)
  }
  if (reply._tag === "Overloaded") return replies.send(requestId, Reply.Overloaded, reply.retryAfterSeconds)
  // An actor stopping (lease lost, handed over, idle) or fenced is no owner any more: the
  // sender looks the owner up again. Nothing was decided, so that is safe.
  if (reply.reason === "stopping" || reply.reason === "fenced")
    return replies.send(requestId, Reply.NotOwner, null)
  return replies.send(requestId, Reply.Unavailable, reply.reason)
}

const offerTo = (
  actor: SaleActor,
  userId: UserId,
  replies: Replies,
  requestId: number,
  span: Tracing.FiberlessSpan | undefined
) => actor.offer(userId, (reply) => answer(replies, requestId, reply), span?.context)

/**
 * Purchases other nodes forward here: decided only while this node owns the sale (or is
 * taking it over), each offered to the actor without a fiber: the owner's decision rate is
 * the ceiling. Anything else is "not the owner", and the sender looks again.
 */
export const answerForwarded =
  (owned: OwnedSales["Service"], startSpan?: Tracing.StartSpan): ForwardHandler =>
  (saleId, userId, requestId, sent, trace?: Tracing.TraceContext) => {
    const span =
      trace === undefined || startSpan === undefined ? undefined : ownersPart(startSpan, saleId, trace)
    const replies = span === undefined ? sent : endingAt(sent, span)
    if (owned.leaving()) return replies.send(requestId, Reply.NotOwner, null)
    const actor = owned.actor(saleId)
    if (actor !== undefined) return offerTo(actor, userId, replies, requestId, span)
    const starting = owned.starting(saleId)
    if (starting === undefined) return replies.send(requestId, Reply.NotOwner, null)
    Effect.runCallback(starting, {
      onExit: (exit) => {
        if (Exit.isSuccess(exit) && exit.value !== undefined)
          return offerTo(exit.value, userId, replies, requestId, span)
        const failure = Exit.isFailure(exit) ? Cause.findErrorOption(exit.cause) : undefined
        if (failure?._tag === "Some" && failure.value._tag === "SaleNotFound")
          return replies.send(requestId, Reply.SaleNotFound, null)
        replies.send(requestId, Reply.NotOwner, null)
      }
    })
  }

const replyNames = new Map<ReplyCode, string>(Object.entries(Reply).map(([name, code]) => [code, name]))

/** The owner's part of a traced purchase, from its arrival to its answer, in the sender's trace. */
const ownersPart = (startSpan: Tracing.StartSpan, saleId: SaleId, trace: Tracing.TraceContext) =>
  startSpan("SaleActor.purchase", { parent: trace, kind: "server", attributes: { "sale.id": saleId } })

const endingAt = (replies: Replies, span: Tracing.FiberlessSpan): Replies => ({
  send: (requestId, code, value) => {
    span.end({ "purchase.outcome": replyNames.get(code) })
    replies.send(requestId, code, value)
  }
})
