using System.Net;
using Lodestar.Discovery;
using Lodestar.Endpoints;
using Microsoft.Extensions.Primitives;
using Microsoft.Extensions.ServiceDiscovery;

namespace Lodestar.ServiceDiscovery.Internal;

/// <summary>
/// Fills Microsoft.Extensions.ServiceDiscovery's endpoint list for one query from Lodestar's endpoint cache, and
/// tells the library's watcher to refresh through a change token each time Lodestar publishes a new set.
/// </summary>
/// <remarks>
/// The token handed out with a set fires only for a newer version: the first set, which also reaches a new
/// subscription, does not cause a needless refresh, and a set published while one is read is never missed.
/// </remarks>
internal sealed class LodestarServiceEndpointProvider : IServiceEndpointProvider
{
    private static readonly IChangeToken s_changed = new CancellationChangeToken(new CancellationToken(canceled: true));
    private readonly string _serviceName;
    private readonly IReadOnlyList<string> _schemes;
    private readonly IEndpointResolver _resolver;
    private readonly IDisposable _subscription;
    private CancellationTokenSource _changed = new();
    private long _latest;

    /// <exception cref="EndpointResolutionException">No Lodestar source serves the service.</exception>
    public LodestarServiceEndpointProvider(string serviceName, IReadOnlyList<string> schemes, IEndpointResolver resolver)
    {
        _serviceName = serviceName;
        _schemes = schemes;
        _resolver = resolver;
        _subscription = resolver.Watch(serviceName, null, OnChange);
    }

    /// <inheritdoc/>
    public async ValueTask PopulateAsync(IServiceEndpointBuilder endpoints, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(endpoints);

        // An earlier provider (an override) already answered: keep its answer, as the library's own providers do.
        if (endpoints.Endpoints.Count != 0)
        {
            return;
        }

        var set = await _resolver.GetEndpointsAsync(_serviceName, null, cancellationToken).ConfigureAwait(false);

        // The source is read before the latest version: a set published in between either shows in the version (a
        // newer set exists: refresh at once) or cancels the source read, since the version is written before the swap.
        var changed = Volatile.Read(ref _changed);
        endpoints.AddChangeToken(Volatile.Read(ref _latest) > set.Version ? s_changed : new CancellationChangeToken(changed.Token));
        foreach (var endpoint in Select(set.Endpoints, _schemes))
        {
            var serviceEndpoint = ServiceEndpoint.Create(ToEndPoint(endpoint));
            serviceEndpoint.Features.Set(endpoint);
            serviceEndpoint.Features.Set<IServiceEndpointProvider>(this);
            endpoints.Endpoints.Add(serviceEndpoint);
        }
    }

    /// <inheritdoc/>
    public ValueTask DisposeAsync()
    {
        _subscription.Dispose();
        return default;
    }

    /// <inheritdoc/>
    public override string ToString() => "Lodestar";

    /// <summary>
    /// Keeps what the query's scheme list allows, as the library's configuration provider does: endpoints without a
    /// scheme, and among those with one, only the most preferred scheme present (<c>https+http</c> takes the https
    /// endpoints when there are any, else the http ones). An empty list allows every scheme.
    /// </summary>
    internal static IEnumerable<DiscoveredEndpoint> Select(IReadOnlyList<DiscoveredEndpoint> endpoints, IReadOnlyList<string> schemes)
    {
        if (schemes.Count == 0)
        {
            return endpoints;
        }

        var best = int.MaxValue;
        foreach (var endpoint in endpoints)
        {
            if (endpoint.Scheme is { } scheme && IndexOf(schemes, scheme) is >= 0 and var index && index < best)
            {
                best = index;
            }
        }

        return endpoints.Where(e => e.Scheme is null || IndexOf(schemes, e.Scheme) == best);
    }

    /// <summary>Maps an endpoint to the form the library expects: a URI when it names its scheme, else an IP or DNS endpoint.</summary>
    internal static EndPoint ToEndPoint(DiscoveredEndpoint endpoint)
    {
        if (endpoint.Scheme is { } scheme)
        {
            return new UriEndPoint(new Uri(string.Concat(scheme, "://", endpoint.Address), UriKind.Absolute));
        }

        return IPAddress.TryParse(endpoint.Host, out var ip) ? new IPEndPoint(ip, endpoint.Port) : new DnsEndPoint(endpoint.Host, endpoint.Port);
    }

    private static int IndexOf(IReadOnlyList<string> schemes, string scheme)
    {
        for (var i = 0; i < schemes.Count; i++)
        {
            if (string.Equals(schemes[i], scheme, StringComparison.OrdinalIgnoreCase))
            {
                return i;
            }
        }

        return -1;
    }

    private void OnChange(EndpointSet set)
    {
        // The first set reaches a new subscription too; only a version past the one read fires the token.
        long seen;
        do
        {
            seen = Volatile.Read(ref _latest);
            if (set.Version <= seen)
            {
                return;
            }
        }
        while (Interlocked.CompareExchange(ref _latest, set.Version, seen) != seen);

        var previous = Interlocked.Exchange(ref _changed, new CancellationTokenSource());

        // Fire outside any lock of ours: the library's callback starts its refresh from here.
        // Not disposed: a reader may still be taking its token, and a source without a timer holds nothing to free.
        previous.Cancel();
    }
}
