using Lodestar.Dns.Resolver;
using Lodestar.Dns.Resolver.Internal;

namespace Lodestar.Fuzz.Targets;

internal static class DnsTargets
{
    /// <summary>A DNS answer as it arrives over UDP or TCP (without the TCP length prefix).</summary>
    public static readonly FuzzTarget Message = new(
        "dns-message",
        "DNS messages (RFC 1035) read by the stub resolver",
        static input => DnsMessageReader.Parse(input),
        typeof(DnsFormatException));
}
