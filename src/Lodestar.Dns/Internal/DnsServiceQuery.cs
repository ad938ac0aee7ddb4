using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Net;
using Lodestar.Dns.Resolver.Internal;

namespace Lodestar.Dns.Internal;

/// <summary>What the DNS source asks for one service: the A/AAAA records of a host with a port, or an SRV name.</summary>
internal sealed record DnsServiceQuery(string Name, bool IsSrv, int Port)
{
    /// <summary>
    /// Maps a service name to a query: an explicit <see cref="DnsSourceOptions.SrvNames"/> entry, an
    /// <c>_service._proto.name</c>, <see cref="DnsSourceOptions.SrvPortName"/>, or a host name with an optional
    /// <c>:port</c> suffix or as a URI (<c>http://name:port</c>).
    /// </summary>
    public static bool TryParse(string serviceName, DnsSourceOptions options, [NotNullWhen(true)] out DnsServiceQuery? query)
    {
        query = null;
        if (string.IsNullOrWhiteSpace(serviceName))
        {
            return false;
        }

        if (options.SrvNames.TryGetValue(serviceName, out var srvName))
        {
            query = new DnsServiceQuery(srvName, true, 0);
            return DnsQueryWriter.IsValidName(srvName);
        }

        var name = serviceName;
        int? port = null;
        if (serviceName.Contains("://", StringComparison.Ordinal))
        {
            // A URI (http://orders.shop:8080/): its host, and its port or the scheme's default.
            if (!Uri.TryCreate(serviceName, UriKind.Absolute, out var uri) || uri.HostNameType != UriHostNameType.Dns || uri.Port is < 1 or > 65535)
            {
                return false;
            }

            serviceName = uri.IdnHost + ":" + uri.Port.ToString(CultureInfo.InvariantCulture);
            name = serviceName;
        }

        var colon = serviceName.LastIndexOf(':');
        if (colon > 0 && serviceName.IndexOf(':', StringComparison.Ordinal) == colon)
        {
            if (!int.TryParse(serviceName.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var parsed) || parsed is < 1 or > 65535)
            {
                return false;
            }

            name = serviceName[..colon];
            port = parsed;
        }

        if (IPAddress.TryParse(name, out _) || !DnsQueryWriter.IsValidName(name))
        {
            return false;
        }

        if (IsSrvName(name))
        {
            query = new DnsServiceQuery(name, true, 0);
            return true;
        }

        if (!string.IsNullOrEmpty(options.SrvPortName))
        {
            var srv = $"_{options.SrvPortName}._tcp.{name}";
            query = new DnsServiceQuery(srv, true, 0);
            return DnsQueryWriter.IsValidName(srv);
        }

        query = new DnsServiceQuery(name, false, port ?? (options.Ports.TryGetValue(name, out var configured) ? configured : options.DefaultPort));
        return true;
    }

    /// <summary>Returns whether the name has the RFC 2782 form <c>_service._proto.name</c>.</summary>
    public static bool IsSrvName(string name)
    {
        var labels = name.Split('.');
        return labels.Length >= 3 && labels[0].Length > 1 && labels[0][0] == '_' && labels[1].Length > 1 && labels[1][0] == '_';
    }
}
