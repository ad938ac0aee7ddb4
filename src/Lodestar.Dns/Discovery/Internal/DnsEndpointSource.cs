using System.Net;
using Lodestar.Discovery;
using Lodestar.Dns.Internal;
using Lodestar.Dns.Resolver;
using Lodestar.Dns.Resolver.Internal;
using Lodestar.Endpoints;
using Lodestar.Internal;
using Microsoft.Extensions.Logging;

namespace Lodestar.Dns.Discovery.Internal;

/// <summary>
/// Follows one service in DNS: A/AAAA records of a host name, or SRV records resolved to addresses, refreshed when the
/// shortest TTL of the answer expires.
/// </summary>
/// <remarks>
/// The refresh interval is the smallest TTL of every record used (CNAMEs, SRV records, target addresses), clamped to
/// <see cref="DnsSourceOptions.MinTtl"/>..<see cref="DnsSourceOptions.MaxTtl"/>; a negative answer is kept for its
/// SOA-derived TTL (RFC 2308 §5). A failed refresh is reported and retried with jittered exponential backoff while the
/// last published set stays in force.
/// </remarks>
internal sealed partial class DnsEndpointSource : IEndpointSource
{
    private readonly string _serviceName;
    private readonly DnsServiceQuery _query;
    private readonly DnsStubResolver _resolver;
    private readonly DnsSourceOptions _options;
    private readonly TimeProvider _timeProvider;
    private readonly RandomSource _random;
    private readonly ILogger _logger;

    public DnsEndpointSource(string serviceName, DnsServiceQuery query, DnsStubResolver resolver, DnsSourceOptions options,
        TimeProvider timeProvider, RandomSource random, ILogger logger)
    {
        _serviceName = serviceName;
        _query = query;
        _resolver = resolver;
        _options = options;
        _timeProvider = timeProvider;
        _random = random;
        _logger = logger;
    }

    public async Task RunAsync(IEndpointObserver observer, CancellationToken cancellationToken)
    {
        var backoff = new ExponentialBackoff(_options.RetryDelay, _options.MaxRetryDelay, _random);
        HashSet<string> published = new(StringComparer.OrdinalIgnoreCase);
        while (!cancellationToken.IsCancellationRequested)
        {
            TimeSpan wait;
            try
            {
                var (endpoints, ttl, negative) = await ResolveAsync(cancellationToken).ConfigureAwait(false);
                if (negative && published.Count > 0)
                {
                    Log.NameGone(_logger, _serviceName, _query.Name);
                }

                observer.OnEndpoints(endpoints);
                published = LogRemoved(published, endpoints);
                backoff.Reset();
                wait = Clamp(ttl);
                Log.Refreshed(_logger, _serviceName, _query.Name, endpoints.Count, wait.TotalSeconds);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                wait = backoff.NextDelay();
                Log.RefreshFailed(_logger, _serviceName, _query.Name, wait.TotalSeconds, ex.Message);
                observer.OnError(ex is DnsResolutionException or DnsFormatException
                    ? ex
                    : new DnsResolutionException($"Resolving '{_query.Name}' for service '{_serviceName}' failed: {ex.Message}", ex));
            }

            try
            {
                await _timeProvider.DelayAsync(wait, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>Resolves the service once: the endpoints, the TTL to refresh after, and whether the answer was negative.</summary>
    internal async Task<(List<DiscoveredEndpoint> Endpoints, TimeSpan Ttl, bool Negative)> ResolveAsync(CancellationToken cancellationToken)
    {
        var endpoints = new List<DiscoveredEndpoint>();
        if (!_query.IsSrv)
        {
            var (addresses, ttl) = await ResolveAddressesAsync(_query.Name, absolute: false, cancellationToken).ConfigureAwait(false);
            foreach (var address in addresses)
            {
                endpoints.Add(DiscoveredEndpoint.Create(address.ToString(), _query.Port));
            }

            return (endpoints, ttl, addresses.Count == 0);
        }

        var srv = await _resolver.LookupAsync(_query.Name, DnsRecordType.SRV, cancellationToken).ConfigureAwait(false);
        if (srv.Status != DnsLookupStatus.Success)
        {
            return (endpoints, NegativeTtl(srv), true);
        }

        var minTtl = TimeSpan.FromSeconds(srv.Ttl ?? 0);
        foreach (var record in srv.Records)
        {
            var data = record.Srv!.Value;
            if (data.Target.Length == 0 || data.Port == 0)
            {
                // RFC 2782: a target of "." means the service is decidedly not available at this name.
                continue;
            }

            var (addresses, ttl) = FromAdditionals(srv.Additionals, data.Target);
            if (addresses.Count == 0)
            {
                (addresses, ttl) = await ResolveAddressesAsync(data.Target, absolute: true, cancellationToken).ConfigureAwait(false);
            }

            minTtl = Min(minTtl, ttl);
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal) { ["dns.target"] = data.Target };
            foreach (var address in addresses)
            {
                // SRV weight 0 means "a very small chance" (RFC 2782), not "none", which Lodestar's weight 0 means.
                endpoints.Add(DiscoveredEndpoint.Create(address.ToString(), data.Port, weight: Math.Max((int)data.Weight, 1), metadata: metadata, priority: data.Priority));
            }
        }

        return (endpoints, minTtl, endpoints.Count == 0);
    }

    private async Task<(List<IPAddress> Addresses, TimeSpan Ttl)> ResolveAddressesAsync(string name, bool absolute, CancellationToken cancellationToken)
    {
        var lookupName = absolute ? name + "." : name;
        var a = _resolver.LookupAsync(lookupName, DnsRecordType.A, cancellationToken);
        var aaaa = _resolver.LookupAsync(lookupName, DnsRecordType.AAAA, cancellationToken);
        await Task.WhenAll(a, aaaa).ConfigureAwait(false);
        var addresses = new List<IPAddress>();
        var ttl = TimeSpan.MaxValue;
        foreach (var result in (ReadOnlySpan<DnsLookupResult>)[await a.ConfigureAwait(false), await aaaa.ConfigureAwait(false)])
        {
            if (result.Status == DnsLookupStatus.Success)
            {
                addresses.AddRange(result.Records.Select(static r => r.Address!));
                ttl = Min(ttl, TimeSpan.FromSeconds(result.Ttl ?? 0));
            }
            else
            {
                ttl = Min(ttl, NegativeTtl(result));
            }
        }

        return (addresses, ttl);
    }

    private static (List<IPAddress> Addresses, TimeSpan Ttl) FromAdditionals(IReadOnlyList<DnsRecord> additionals, string target)
    {
        var addresses = new List<IPAddress>();
        var ttl = TimeSpan.MaxValue;
        foreach (var record in additionals)
        {
            if (record.Address is not null && record.Class == 1 && DnsStubResolver.NameEquals(record.Name, target))
            {
                addresses.Add(record.Address);
                ttl = Min(ttl, TimeSpan.FromSeconds(record.Ttl));
            }
        }

        return (addresses, ttl);
    }

    private TimeSpan NegativeTtl(DnsLookupResult result)
        => result.Ttl is { } seconds ? TimeSpan.FromSeconds(seconds) : _options.NegativeTtl;

    private TimeSpan Clamp(TimeSpan ttl)
        => ttl < _options.MinTtl ? _options.MinTtl : ttl > _options.MaxTtl ? _options.MaxTtl : ttl;

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

    private HashSet<string> LogRemoved(HashSet<string> previous, List<DiscoveredEndpoint> endpoints)
    {
        var current = new HashSet<string>(endpoints.Select(static e => e.Address), StringComparer.OrdinalIgnoreCase);
        var removed = previous.Where(a => !current.Contains(a)).ToList();
        if (removed.Count > 0)
        {
            Log.AddressesRemoved(_logger, _serviceName, string.Join(", ", removed));
        }

        return current;
    }

    private static partial class Log
    {
        [LoggerMessage(10, LogLevel.Debug, "DNS refresh of service {Service} ({Name}): {Count} endpoints; next refresh in {Seconds:0.###} s.", EventName = "DnsRefreshed")]
        public static partial void Refreshed(ILogger logger, string service, string name, int count, double seconds);

        [LoggerMessage(11, LogLevel.Warning, "DNS refresh of service {Service} ({Name}) failed; keeping the last endpoints and retrying in {Seconds:0.###} s: {Error}", EventName = "DnsRefreshFailed")]
        public static partial void RefreshFailed(ILogger logger, string service, string name, double seconds, string error);

        [LoggerMessage(12, LogLevel.Warning, "DNS says service {Service} ({Name}) has no addresses any more.", EventName = "DnsNameGone")]
        public static partial void NameGone(ILogger logger, string service, string name);

        [LoggerMessage(13, LogLevel.Debug, "Addresses left service {Service} in DNS: {Addresses}.", EventName = "DnsAddressesRemoved")]
        public static partial void AddressesRemoved(ILogger logger, string service, string addresses);
    }
}
