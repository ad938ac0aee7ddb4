using System.Net;
using Lodestar.Dns.Resolver.Internal;
using Microsoft.Extensions.Logging.Abstractions;

namespace Lodestar.Dns.Tests;

internal static class TestResolvers
{
    public static DnsStubResolver Create(IEnumerable<IPEndPoint> servers, TimeSpan? timeout = null, int attempts = 1, IReadOnlyList<string>? search = null, int ndots = 1, ushort payload = 1232)
        => new(new DnsResolverSettings
        {
            Servers = [.. servers],
            Timeout = timeout ?? TimeSpan.FromSeconds(2),
            Attempts = attempts,
            SearchDomains = search ?? [],
            Ndots = ndots,
            UdpPayloadSize = payload,
        }, TimeProvider.System, NullLogger.Instance);
}
