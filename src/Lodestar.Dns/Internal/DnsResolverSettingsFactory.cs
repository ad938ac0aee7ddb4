using System.Net;
using Lodestar.Dns.Resolver.Internal;

namespace Lodestar.Dns.Internal;

/// <summary>Merges <see cref="DnsSourceOptions"/> over resolv.conf into the resolver's settings.</summary>
internal static class DnsResolverSettingsFactory
{
    public static DnsResolverSettings Create(DnsSourceOptions options)
    {
        var needsFile = options.Servers.Count == 0 || options.SearchDomains is null || options.Ndots is null || options.Timeout is null || options.Attempts is null;
        var conf = needsFile ? ResolvConf.Load(options.ResolvConfPath) : new ResolvConf();
        var servers = new List<IPEndPoint>();
        foreach (var text in options.Servers)
        {
            if (!TryParseServer(text, out var server))
            {
                throw new ArgumentException($"DNS server '{text}' is not an IP address with an optional port.", nameof(options));
            }

            servers.Add(server);
        }

        if (servers.Count == 0)
        {
            // resolv.conf(5): with no nameserver line, the name server on the local machine is used.
            servers.AddRange(conf.NameServers.Count > 0 ? conf.NameServers : [new IPEndPoint(IPAddress.Loopback, 53)]);
        }

        return new DnsResolverSettings
        {
            Servers = servers,
            SearchDomains = options.SearchDomains is { } search ? [.. search.Select(static s => s.Trim().TrimEnd('.')).Where(static s => s.Length > 0)] : conf.SearchDomains,
            Ndots = options.Ndots ?? conf.Ndots,
            Timeout = options.Timeout ?? conf.Timeout,
            Attempts = options.Attempts ?? conf.Attempts,
            UdpPayloadSize = (ushort)options.UdpPayloadSize,
        };
    }

    /// <summary>Parses <c>ip</c>, <c>ip:port</c> or <c>[v6]:port</c>; the port defaults to 53.</summary>
    public static bool TryParseServer(string? text, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out IPEndPoint? server)
    {
        server = null;
        if (string.IsNullOrWhiteSpace(text) || !IPEndPoint.TryParse(text.Trim(), out var parsed))
        {
            return false;
        }

        server = parsed.Port == 0 ? new IPEndPoint(parsed.Address, 53) : parsed;
        return true;
    }
}
