// CreateNetwork options: strict on -o options, exact on what each one means.
import { buildSpec, parseGeneric } from '../../src/network/spec.js';

const ID = 'a'.repeat(64);
const v4 = [{ pool: '10.20.0.0/24', gateway: '10.20.0.1/24', aux: {} }];
const spec = (generic: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
  buildSpec({ id: ID, options: { 'com.docker.network.generic': generic, ...extra }, ipv4: v4, ipv6: [], defaultBridge: 'kn-aaaaaaaaaaaa' });

describe('network options', () => {
  test('defaults match Docker bridge defaults', () => {
    expect(spec({})).toEqual({
      id: ID, mode: 'bridge', bridge: 'kn-aaaaaaaaaaaa', icc: true, masquerade: true, internal: false, knitIpam: false,
      ipv4: [{ subnet: '10.20.0.0/24', gateway: '10.20.0.1/24' }], ipv6: [],
    });
  });
  test('Docker bridge option names mean the same thing', () => {
    const s = spec({
      'com.docker.network.bridge.name': 'mybr0',
      'com.docker.network.bridge.enable_icc': 'false',
      'com.docker.network.bridge.enable_ip_masquerade': 'False',
      'com.docker.network.bridge.host_binding_ipv4': '127.0.0.1',
      'com.docker.network.driver.mtu': '1400',
    }, { 'com.docker.network.internal': true });
    expect(s).toMatchObject({ bridge: 'mybr0', icc: false, masquerade: false, hostBindingIpv4: '127.0.0.1', mtu: 1400, internal: true });
  });
  test('overlay with a VNI', () => {
    expect(spec({ 'knit.mode': 'overlay', 'knit.vni': '4242' })).toMatchObject({ mode: 'overlay', vni: 4242 });
  });
  test('encrypted overlay: Docker\'s `--opt encrypted` (empty), or a true boolean; false or absent is plain', () => {
    expect(spec({ 'knit.mode': 'overlay', encrypted: '' })).toMatchObject({ mode: 'overlay', encrypted: true });
    expect(spec({ 'knit.mode': 'overlay', encrypted: 'true' }).encrypted).toBe(true);
    expect(spec({ 'knit.mode': 'overlay', encrypted: 'false' })).not.toHaveProperty('encrypted');
    expect(spec({ 'knit.mode': 'overlay' })).not.toHaveProperty('encrypted');
  });
  test.each([
    [{ 'com.docker.network.bridge.enable_icc': 'maybe' }, /enable_icc="maybe" is not a boolean/],
    [{ 'com.docker.network.driver.mtu': '9x' }, /mtu="9x" must be a whole number/],
    [{ 'com.docker.network.driver.mtu': '50' }, /from 68 to 65535/],
    [{ 'knit.mode': 'ipvlan' }, /"ipvlan" must be bridge, overlay or macvlan/],
    [{ 'knit.vni': '5' }, /only applies to knit.mode=overlay/],
    [{ 'knit.mode': 'overlay', 'knit.vni': '16777216' }, /from 1 to 16777215/],
    [{ 'com.docker.network.bridge.host_binding_ipv4': 'localhost' }, /not an IP address/],
    [{ bogus: '1' }, /unknown option "bogus"/],
    [{ 'knit.mdoe': 'overlay' }, /unknown option "knit.mdoe"/],
    [{ 'com.docker.network.bridge.gateway_mode_ipv4': 'routed' }, /unknown option "com.docker.network.bridge.gateway_mode_ipv4"/],
    [{ encrypted: '' }, /option encrypted only applies to knit.mode=overlay/],
    [{ 'knit.mode': 'overlay', encrypted: 'maybe' }, /encrypted="maybe" is not a boolean/],
    [{ 'com.docker.network.bridge.name': { a: 1 } }, /must be a string/],
  ])('refuses %p', (generic, msg) => {
    expect(() => spec(generic)).toThrow(msg);
  });
  test('libnetwork\'s own options (dockerd 28+ passes them on to every driver) are accepted and ignored', () => {
    const generic = { 'com.docker.network.advertise_addr_nmsgs': '1', 'com.docker.network.advertise_addr_ms': '200', 'knit.mode': 'overlay' };
    expect(spec(generic)).toMatchObject({ mode: 'overlay' });
    expect(parseGeneric(generic)).toEqual({ 'knit.mode': 'overlay' });
  });
  test('a gateway outside the subnet is refused', () => {
    expect(() => buildSpec({ id: ID, options: {}, ipv4: [{ pool: '10.20.0.0/24', gateway: '10.21.0.1/24', aux: {} }], ipv6: [], defaultBridge: 'x' })).toThrow(/not in subnet/);
  });
  test('no IPv4 data is refused', () => {
    expect(() => buildSpec({ id: ID, options: {}, ipv4: [], ipv6: [], defaultBridge: 'x' })).toThrow(/no IPv4 subnet/);
  });
});
