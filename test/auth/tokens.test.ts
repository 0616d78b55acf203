import t from 'tap'
import { bearerToken, parseTokenFile, parseTokenSpecs, Principal, TokenRegistry } from '../../server/auth/tokens.js'
import { isLoopback, resolveOptions } from '../../server/options.js'

const READER = 'r'.repeat(24)
const WRITER = 'w'.repeat(24)
const CAM1 = 'c'.repeat(24)

t.test('authenticate: the right principal for each token, null for anything else', async (t) => {
  const registry = new TokenRegistry([
    { token: READER, scopes: ['read'], name: 'reader' },
    { token: WRITER, scopes: ['read', 'write'] },
    { token: CAM1, scopes: ['read', 'write'], ids: ['cam1/*', 'solo'] },
  ])
  t.equal(registry.enabled, true)
  t.equal(registry.authenticate(READER)?.name, 'reader')
  t.equal(registry.authenticate(WRITER)?.name, 'token-2')
  t.equal(registry.authenticate(READER.slice(1)), null, 'a prefix of a token is not the token')
  t.equal(registry.authenticate(READER + 'r'), null, 'nor is a longer string')
  t.equal(registry.authenticate(''), null)
  const reader = registry.authenticate(READER)!
  t.ok(reader.has('read'))
  t.notOk(reader.has('write'))
  t.throws(() => reader.assert('write', 'a'), { code: 'PXP_ERR_FORBIDDEN' })
  const cam = registry.authenticate(CAM1)!
  t.ok(cam.mayTouch('cam1/a'))
  t.ok(cam.mayTouch('cam1/a/b'))
  t.notOk(cam.mayTouch('cam1'), 'cam1/* covers ids under cam1/, not cam1 itself')
  t.notOk(cam.mayTouch('cam10/a'), 'a prefix is a namespace, not a string prefix')
  t.ok(cam.mayTouch('solo'))
  t.notOk(cam.mayTouch('solo/x'))
  t.throws(() => cam.assert('read', 'cam2/a'), { code: 'PXP_ERR_FORBIDDEN' })
  t.throws(() => cam.assertMayCreate(undefined), { code: 'PXP_ERR_FORBIDDEN' }, 'a limited token must name what it creates')
  t.doesNotThrow(() => cam.assertMayCreate('cam1/new'))
  t.same(cam.visible([{ id: 'cam1/a' }, { id: 'cam2/b' }, { id: 'solo' }]).map((d) => d.id), ['cam1/a', 'solo'])
  t.throws(() => Principal.none.assert('read'), { code: 'PXP_ERR_UNAUTHORIZED' })
})

t.test('admin implies read and write', async (t) => {
  const admin = new TokenRegistry([{ token: READER, scopes: ['admin'] }]).authenticate(READER)!
  t.ok(admin.has('read') && admin.has('write') && admin.has('admin'))
})

t.test('token specs are validated with messages that say what to do', async (t) => {
  t.throws(() => new TokenRegistry([{ token: 'short', scopes: ['read'] }]), { code: 'PXP_ERR_VALIDATION', message: /16-512 characters/ })
  t.throws(() => new TokenRegistry([{ token: READER, scopes: [] }]), { code: 'PXP_ERR_VALIDATION', message: /scopes/ })
  t.throws(() => new TokenRegistry([{ token: READER, scopes: ['root' as 'read'] }]), { code: 'PXP_ERR_VALIDATION' })
  t.throws(() => new TokenRegistry([{ token: READER, scopes: ['read'], ids: ['../etc/*'] }]), { code: 'PXP_ERR_VALIDATION', message: /id pattern/ })
  t.throws(() => new TokenRegistry([{ token: READER, scopes: ['read'], ids: ['cam*'] }]), { code: 'PXP_ERR_VALIDATION' })
  t.throws(() => new TokenRegistry([{ token: READER, scopes: ['read'] }, { token: READER, scopes: ['write'] }]), { message: /repeats/ })
  t.throws(() => new TokenRegistry([{ token: 'has space in the token', scopes: ['read'] }]), { code: 'PXP_ERR_VALIDATION' })
})

t.test('parsing --token, PIXELPORT_TOKENS and token files', async (t) => {
  t.same(parseTokenSpecs(`${READER}:read;${CAM1}:read,write:cam1/*,solo`, 'env'), [
    { token: READER, scopes: ['read'] },
    { token: CAM1, scopes: ['read', 'write'], ids: ['cam1/*', 'solo'] },
  ])
  t.throws(() => parseTokenSpecs(READER, '--token'), { message: /TOKEN:SCOPES/ })
  t.same(parseTokenFile(`# readers\n${READER}:read\n\n${WRITER}:write\n`, 'f'), [
    { token: READER, scopes: ['read'] }, { token: WRITER, scopes: ['write'] },
  ])
  t.same(parseTokenFile(JSON.stringify([{ token: READER, scopes: ['read'], name: 'x' }]), 'f.json'), [{ token: READER, scopes: ['read'], name: 'x' }])
  t.throws(() => parseTokenFile('[nope', 'f.json'), { message: /not valid JSON/ })
})

t.test('bearerToken reads the Authorization header', async (t) => {
  t.equal(bearerToken(undefined), undefined)
  t.equal(bearerToken(`Bearer ${READER}`), READER)
  t.equal(bearerToken(`bearer  ${READER}`), READER)
  t.equal(bearerToken(`Basic ${READER}`), null)
  t.equal(bearerToken('Bearer'), null)
})

t.test('binding: loopback by default; elsewhere only with tokens or insecure', async (t) => {
  t.equal(resolveOptions({}).host, '127.0.0.1')
  for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]']) t.ok(isLoopback(h), h)
  for (const h of ['0.0.0.0', '::', '10.0.0.1', '192.168.1.1', 'example.com']) t.notOk(isLoopback(h), h)
  t.throws(() => resolveOptions({ host: '0.0.0.0' }), { code: 'PXP_ERR_INSECURE', message: /without tokens.*--insecure/ })
  t.doesNotThrow(() => resolveOptions({ host: '0.0.0.0', insecure: true }))
  t.doesNotThrow(() => resolveOptions({ host: '0.0.0.0', tokens: [{ token: READER, scopes: ['read'] }] }))
  t.throws(() => resolveOptions({ corsOrigins: ['https://a.example/path'] }), { code: 'PXP_ERR_VALIDATION' })
})
