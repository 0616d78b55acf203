/**
 * The op table: exactly one handler for every op a client may send, and none for anything else, so a
 * message the validator accepts always reaches a handler.
 */
import t from 'tap'
import { CLIENT_MESSAGE_SCHEMAS, CLIENT_OPS } from '../../protocol/wire/client-messages.js'
import { OPS } from '../../server/ws/ops.js'

t.test('one handler per client op', async (t) => {
  t.same(Object.keys(OPS).sort(), [...CLIENT_OPS].sort())
  for (const op of CLIENT_OPS) {
    t.type(OPS[op], 'function', op)
    t.equal(CLIENT_MESSAGE_SCHEMAS[op].properties.op.const, op, `the ${op} schema names its op`)
  }
})
