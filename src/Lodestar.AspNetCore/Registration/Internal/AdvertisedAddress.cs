using System.Globalization;
using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;

namespace Lodestar.AspNetCore.Registration.Internal;

/// <summary>Chooses the concrete host, port and scheme to advertise from the server's bound addresses.</summary>
internal static class AdvertisedAddress
{
    /// <summary>Resolves what to advertise, or says why nothing can be.</summary>
    /// <param name="boundAddresses">The server's addresses as <c>IServerAddressesFeature</c> lists them.</param>
    /// <param name="options">The registration options.</param>
    /// <param name="podIp">The <c>POD_IP</c> setting, or <see langword="null"/>.</param>
    /// <param name="machineAddress">Returns a concrete machine address for wildcard bindings (injectable for tests).</param>
    public static (string Host, int Port, string Scheme) Resolve(IEnumerable<string> boundAddresses, LodestarRegistrationOptions options, string? podIp,
        Func<string?> machineAddress)
    {
        var candidates = new List<(string Scheme, string Host, int Port)>();
        foreach (var address in boundAddresses)
        {
            if (TryParse(address, out var parsed))
            {
                candidates.Add(parsed);
            }
        }

        var wanted = options.Scheme;
        var chosen = candidates
            .Where(c => wanted is null || string.Equals(c.Scheme, wanted, StringComparison.OrdinalIgnoreCase))
            .OrderBy(c => string.Equals(c.Scheme, "http", StringComparison.OrdinalIgnoreCase) ? 0 : 1)
            .Select(c => ((string Scheme, string Host, int Port)?)c)
            .FirstOrDefault();
        if (chosen is null)
        {
            throw new InvalidOperationException(candidates.Count == 0
                ? "The server reports no bound address to advertise."
                : $"The server has no '{wanted}' binding to advertise (bound: {string.Join(", ", boundAddresses)}).");
        }

        var (scheme, boundHost, boundPort) = chosen.Value;
        var port = options.AdvertisePort ?? boundPort;
        string? host = options.AdvertiseAddress;
        if (string.IsNullOrWhiteSpace(host))
        {
            host = string.IsNullOrWhiteSpace(podIp) ? boundHost : podIp.Trim();
        }

        if (IsWildcard(host))
        {
            host = machineAddress() ?? throw new InvalidOperationException(
                $"The server is bound to the wildcard address '{boundHost}' and no up, non-loopback IPv4 address was found; set {nameof(LodestarRegistrationOptions.AdvertiseAddress)} or POD_IP.");
        }
        else if (string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase))
        {
            host = IPAddress.Loopback.ToString();
        }

        if (host.StartsWith('[') && host.EndsWith(']'))
        {
            host = host[1..^1];
        }

        return (host, port, scheme.ToLowerInvariant());
    }

    /// <summary>Gets whether a host is a wildcard that must never be advertised.</summary>
    public static bool IsWildcard(string host)
        => host is "*" or "+" or "0.0.0.0" or "::" or "[::]" || (IPAddress.TryParse(host.Trim('[', ']'), out var ip) && (ip.Equals(IPAddress.Any) || ip.Equals(IPAddress.IPv6Any)));

    /// <summary>The first up, non-loopback unicast IPv4 address of the machine, or <see langword="null"/>.</summary>
    public static string? FindMachineAddress()
    {
        foreach (var nic in NetworkInterface.GetAllNetworkInterfaces())
        {
            if (nic.OperationalStatus != OperationalStatus.Up || nic.NetworkInterfaceType == NetworkInterfaceType.Loopback)
            {
                continue;
            }

            foreach (var unicast in nic.GetIPProperties().UnicastAddresses)
            {
                if (unicast.Address.AddressFamily == AddressFamily.InterNetwork && !IPAddress.IsLoopback(unicast.Address))
                {
                    return unicast.Address.ToString();
                }
            }
        }

        return null;
    }

    private static bool TryParse(string address, out (string Scheme, string Host, int Port) parsed)
    {
        parsed = default;
        var schemeEnd = address.IndexOf("://", StringComparison.Ordinal);
        if (schemeEnd <= 0)
        {
            return false;
        }

        var scheme = address[..schemeEnd];
        var rest = address[(schemeEnd + 3)..];
        var slash = rest.IndexOf('/', StringComparison.Ordinal);
        if (slash >= 0)
        {
            rest = rest[..slash];
        }

        // Kestrel reports wildcards as http://[::]:80, http://0.0.0.0:80, or as given: http://*:80, http://+:80.
        var colon = rest.LastIndexOf(':');
        if (colon <= 0 || (rest.StartsWith('[') && rest.LastIndexOf(']') > colon))
        {
            return false;
        }

        if (!int.TryParse(rest.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535)
        {
            return false;
        }

        parsed = (scheme, rest[..colon], port);
        return true;
    }
}
