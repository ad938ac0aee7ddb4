using Grpc.Net.Client.Balancer;
using Lodestar.LoadBalancing;

namespace Lodestar.Internal;

/// <summary>
/// A gRPC picker's ready subchannels by endpoint address, and the pick that maps Lodestar's choice onto one of them:
/// when the chosen endpoint has no ready connection (still connecting, or the channel's addresses lag the balancer's
/// set), the balancer is asked again without it, at most once per endpoint.
/// </summary>
internal sealed class ReadySubchannels
{
    private readonly Dictionary<(string Host, int Port), Subchannel> _byAddress;

    public ReadySubchannels(IReadOnlyList<Subchannel> ready)
    {
        _byAddress = new Dictionary<(string, int), Subchannel>(ready.Count, HostPortComparer.Instance);
        foreach (var subchannel in ready)
        {
            var address = subchannel.CurrentAddress ?? (subchannel.GetAddresses() is { Count: > 0 } all ? all[0] : null);
            if (address is not null)
            {
                _byAddress[(address.EndPoint.Host, address.EndPoint.Port)] = subchannel;
            }
        }
    }

    /// <summary>Gets the number of ready subchannels mapped.</summary>
    public int Count => _byAddress.Count;

    /// <summary>The ready subchannel of <paramref name="endpoint"/>'s address, if it has one.</summary>
    public bool TryGet(EndpointState endpoint, out Subchannel subchannel)
        => _byAddress.TryGetValue((endpoint.Endpoint.Host, endpoint.Endpoint.Port), out subchannel!);

    /// <summary>
    /// Picks an endpoint other than those in <paramref name="tried"/> that has a ready subchannel; every endpoint picked
    /// without one is added to <paramref name="tried"/>. Bounded by the number of endpoints.
    /// </summary>
    public bool TryPickAnother(BalancedService service, in Lodestar.LoadBalancing.PickContext pick, List<EndpointState> tried, out EndpointAttempt attempt, out Subchannel subchannel)
    {
        while (tried.Count <= service.Endpoints.Count && service.TryPick(pick with { Attempted = tried }, out attempt))
        {
            if (TryGet(attempt.Endpoint!, out subchannel))
            {
                return true;
            }

            attempt.Cancel();
            tried.Add(attempt.Endpoint!);
        }

        attempt = default;
        subchannel = null!;
        return false;
    }

    /// <summary>Host (case-insensitive) and port.</summary>
    internal sealed class HostPortComparer : IEqualityComparer<(string Host, int Port)>
    {
        public static readonly HostPortComparer Instance = new();

        public bool Equals((string Host, int Port) x, (string Host, int Port) y) => x.Port == y.Port && string.Equals(x.Host, y.Host, StringComparison.OrdinalIgnoreCase);

        public int GetHashCode((string Host, int Port) obj) => HashCode.Combine(StringComparer.OrdinalIgnoreCase.GetHashCode(obj.Host), obj.Port);
    }
}
