using System.Collections.Concurrent;
using System.Net;
using Lodestar.Discovery;
using Lodestar.Endpoints;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Primitives;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.ServiceDiscovery;

namespace Lodestar.Yarp.Internal;

/// <summary>
/// Expands each destination whose address names a service (<c>http://orders/</c>) into one destination per endpoint
/// Lodestar knows for it, and hands YARP a change token that fires when any of those services changes.
/// </summary>
/// <remarks>
/// <para>
/// A destination whose host is an IP literal, <c>localhost</c>, or a name no Lodestar source serves is kept as
/// configured. Endpoints of weight 0 (draining) are left out, since YARP's balancing knows no weights. A service
/// whose set is empty leaves the cluster without its destinations until it has endpoints again.
/// </para>
/// <para>
/// Each service is followed by one subscription for the resolver's lifetime. The token handed out with a set fires
/// only for a newer version of it, so the first set does not cause a needless resolution and a set published while
/// one is read is never missed.
/// </para>
/// </remarks>
internal sealed partial class LodestarDestinationResolver : IDestinationResolver, IDisposable
{
    private readonly IEndpointResolver _resolver;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<string, Lazy<ChangeSignal>> _signals = new(StringComparer.OrdinalIgnoreCase);
    private volatile bool _disposed;

    public LodestarDestinationResolver(IEndpointResolver resolver, ILogger<LodestarDestinationResolver> logger)
    {
        _resolver = resolver;
        _logger = logger;
    }

    /// <inheritdoc/>
    public async ValueTask<ResolvedDestinationCollection> ResolveDestinationsAsync(IReadOnlyDictionary<string, DestinationConfig> destinations, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(destinations);
        ObjectDisposedException.ThrowIf(_disposed, this);
        var resolved = new Dictionary<string, DestinationConfig>(StringComparer.OrdinalIgnoreCase);
        var tokens = new List<IChangeToken>();
        foreach (var (name, destination) in destinations)
        {
            if (!Uri.TryCreate(destination.Address, UriKind.Absolute, out var address) || ToServiceName(address) is not { } service
                || GetSignal(service) is not { } signal)
            {
                resolved[name] = destination;
                continue;
            }

            var set = await _resolver.GetEndpointsAsync(service, null, cancellationToken).ConfigureAwait(false);
            tokens.Add(signal.After(set.Version));
            var added = 0;
            foreach (var endpoint in set.Endpoints)
            {
                if (endpoint.Weight == 0)
                {
                    continue;
                }

                resolved[string.Concat(name, "[", endpoint.Address, "]")] = destination with { Address = Rewrite(address, endpoint) };
                added++;
            }

            Log.Resolved(_logger, name, service, added);
        }

        IChangeToken? changeToken = tokens.Count switch
        {
            0 => null,
            1 => tokens[0],
            _ => new CompositeChangeToken(tokens),
        };
        return new ResolvedDestinationCollection(resolved, changeToken);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        _disposed = true;
        foreach (var signal in _signals.Values)
        {
            if (signal.IsValueCreated)
            {
                signal.Value.Dispose();
            }
        }

        _signals.Clear();
    }

    /// <summary>Gets the service a destination address names, or <see langword="null"/> for an IP literal or <c>localhost</c>.</summary>
    internal static string? ToServiceName(Uri address)
    {
        if (address.HostNameType is UriHostNameType.IPv4 or UriHostNameType.IPv6 || IPAddress.TryParse(address.Host, out _)
            || string.Equals(address.Host, "localhost", StringComparison.OrdinalIgnoreCase) || address.IdnHost.Length == 0)
        {
            return null;
        }

        return address.IdnHost;
    }

    /// <summary>
    /// Builds an endpoint's destination address: the endpoint's scheme when the configured address allows it
    /// (<c>https+http://orders</c> allows both), else the configured scheme (the first of a list); the configured path kept.
    /// </summary>
    internal static string Rewrite(Uri address, DiscoveredEndpoint endpoint)
    {
        var schemes = address.Scheme.Split('+');
        var scheme = schemes[0];
        if (endpoint.Scheme is { } own && Array.Exists(schemes, s => string.Equals(s, own, StringComparison.OrdinalIgnoreCase)))
        {
            scheme = own;
        }

        return string.Concat(scheme, "://", endpoint.Address, address.PathAndQuery);
    }

    private ChangeSignal? GetSignal(string service)
    {
        var lazy = _signals.GetOrAdd(service, static (key, self) => new Lazy<ChangeSignal>(() => new ChangeSignal(self._resolver, key)), this);
        try
        {
            return lazy.Value;
        }
        catch (EndpointResolutionException ex)
        {
            // No Lodestar source serves this name: forget it, so a source that serves it later is asked again.
            _signals.TryRemove(new KeyValuePair<string, Lazy<ChangeSignal>>(service, lazy));
            Log.NotServed(_logger, service, ex.Message);
            return null;
        }
    }

    /// <summary>One service's subscription, and tokens that fire when a set newer than the one read is published.</summary>
    private sealed class ChangeSignal : IDisposable
    {
        private static readonly IChangeToken s_changed = new CancellationChangeToken(new CancellationToken(canceled: true));
        private readonly IDisposable _subscription;
        private CancellationTokenSource _changed = new();
        private long _latest;

        public ChangeSignal(IEndpointResolver resolver, string service)
        {
            _subscription = resolver.Watch(service, null, OnChange);
        }

        /// <summary>Gets a token that fires once a set newer than <paramref name="version"/> is published (at once if one already is).</summary>
        public IChangeToken After(long version)
        {
            // The caller read this version, so the watch may be told of it only later (its watcher delivers on its own
            // thread): count it as seen now, or the token of the set seen before would fire for this very set.
            Advance(version);

            // The source is read before the latest version: a publish that lands in between either shows in the version
            // (a newer set exists) or cancels the source read, since the version is written before the source is swapped.
            var changed = Volatile.Read(ref _changed);
            return Volatile.Read(ref _latest) > version ? s_changed : new CancellationChangeToken(changed.Token);
        }

        public void Dispose()
        {
            _subscription.Dispose();
        }

        private void OnChange(EndpointSet set) => Advance(set.Version);

        /// <summary>A set of <paramref name="version"/> exists: the tokens given for older versions fire.</summary>
        private void Advance(long version)
        {
            // The first set reaches a new subscription too; only a version past every one seen fires the tokens.
            long seen;
            do
            {
                seen = Volatile.Read(ref _latest);
                if (version <= seen)
                {
                    return;
                }
            }
            while (Interlocked.CompareExchange(ref _latest, version, seen) != seen);

            var previous = Interlocked.Exchange(ref _changed, new CancellationTokenSource());
            // Not disposed: a reader may still be taking its token, and a source without a timer holds nothing to free.
            previous.Cancel();
        }
    }

    private static partial class Log
    {
        [LoggerMessage(1300, LogLevel.Debug, "Destination '{Destination}' resolved to {Count} endpoints of service '{Service}'.", EventName = "DestinationResolved")]
        public static partial void Resolved(ILogger logger, string destination, string service, int count);

        [LoggerMessage(1301, LogLevel.Debug, "No Lodestar source serves '{Service}'; its destinations are kept as configured: {Reason}", EventName = "DestinationNotServed")]
        public static partial void NotServed(ILogger logger, string service, string reason);
    }
}
