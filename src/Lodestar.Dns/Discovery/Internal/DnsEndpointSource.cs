using System.Net;
using Lodestar.Discovery;
using Lodestar.Dns.Internal;
using Lodestar.Dns.Resolver;
using Lodestar.Dns.Resolver.Internal;
using Lodestar.Endpoints;
using Microsoft.Extensions.Logging;

namespace Lodestar.Dns.Discovery.Internal;

/// <summary>
/// Follows one service in DNS: A/AAAA records of a host name, or SRV records resolved to addresses, refreshed when the
/// shortest TTL of the answer expires.
/// </summary>
/// <remarks>
/// <para>
/// On the list/watch loop a list is one resolution, which publishes the set and returns when to refresh it; a watch
/// waits that long and asks for a scheduled re-list (<see cref="WatchOutcome.Refresh"/>, not a reconnect). A failed
/// resolution throws, so the base reports it, backs off (<see cref="DnsSourceOptions.Backoff"/>) and lists again while
/// the last published set stays in force.
/// </para>
/// <para>
/// The refresh interval is the smallest TTL of every record used (CNAMEs, SRV records, target addresses), clamped to
/// <see cref="DnsSourceOptions.MinTtl"/>..<see cref="DnsSourceOptions.MaxTtl"/>; a negative answer is kept for its
/// SOA-derived TTL (RFC 2308 §5). When one address family fails and the other has addresses, those addresses are
/// published, the failure is reported beside them, and the name is asked again within
/// <see cref="DnsSourceOptions.NegativeTtl"/> (RFC 2308 §7.1 lets a resolver keep a server failure that long).
/// </para>
/// </remarks>
internal sealed partial class DnsEndpointSource : ListWatchEndpointSource<TimeSpan>
{
    private readonly DnsServiceQuery _query;
    private readonly DnsStubResolver _resolver;
    private readonly DnsSourceOptions _options;
    private HashSet<string> _published = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Initializes a new instance.</summary>
    /// <param name="serviceName">The service followed.</param>
    /// <param name="query">What to ask DNS for it.</param>
    /// <param name="resolver">The resolver; it keeps its own clock for per-attempt timeouts.</param>
    /// <param name="options">TTL clamps, negative TTL and backoff.</param>
    /// <param name="timeProvider">The clock of the refresh schedule and the backoff.</param>
    /// <param name="logger">The source's logger.</param>
    /// <param name="random">Numbers in [0, 1) for the backoff jitter, or <see langword="null"/> for a shared generator.</param>
    public DnsEndpointSource(string serviceName, DnsServiceQuery query, DnsStubResolver resolver, DnsSourceOptions options,
        TimeProvider timeProvider, ILogger logger, Func<double>? random = null)
        : base(serviceName, options.Backoff, timeProvider, logger, random)
    {
        _query = query;
        _resolver = resolver;
        _options = options;
    }

    /// <summary>Resolves the service once, publishes the endpoints and returns the clamped time until the next refresh.</summary>
    protected override async Task<TimeSpan> ListAsync(WatchContext<TimeSpan> context, CancellationToken cancellationToken)
    {
        var resolution = await ResolveAsync(cancellationToken).ConfigureAwait(false);
        // Reported before the set is published, so that whoever waits for the first set has seen the warning too.
        foreach (var problem in resolution.Problems)
        {
            context.ReportError(problem);
        }

        if (resolution.Negative && _published.Count > 0)
        {
            Log.NameGone(Logger, ServiceName, _query.Name);
        }

        context.Publish(resolution.Endpoints);
        _published = LogRemoved(_published, resolution.Endpoints);
        var refreshAfter = Clamp(resolution.Ttl);
        Log.Refreshed(Logger, ServiceName, _query.Name, resolution.Endpoints.Count, refreshAfter.TotalSeconds);
        return refreshAfter;
    }

    /// <summary>Waits until the answer's TTL runs out, then asks for a scheduled re-list.</summary>
    protected override async Task<WatchOutcome> WatchAsync(TimeSpan cursor, WatchContext<TimeSpan> context, CancellationToken cancellationToken)
    {
        await Task.Delay(cursor, TimeProvider, cancellationToken).ConfigureAwait(false);
        return WatchOutcome.Refresh;
    }

    /// <inheritdoc/>
    protected override Exception DescribeError(Exception error)
        => error is DnsResolutionException or DnsFormatException
            ? error
            : new DnsResolutionException($"Resolving '{_query.Name}' for service '{ServiceName}' failed: {error.Message}", error);

    /// <summary>Resolves the service once: the endpoints, the TTL to refresh after, whether the answer was negative, and partial failures.</summary>
    internal async Task<DnsResolution> ResolveAsync(CancellationToken cancellationToken)
    {
        var endpoints = new List<DiscoveredEndpoint>();
        var problems = new List<Exception>();
        if (!_query.IsSrv)
        {
            var (addresses, ttl) = await ResolveAddressesAsync(_query.Name, absolute: false, problems, cancellationToken).ConfigureAwait(false);
            foreach (var address in addresses)
            {
                endpoints.Add(DiscoveredEndpoint.Create(address.ToString(), _query.Port));
            }

            return new DnsResolution(endpoints, ttl, addresses.Count == 0, problems);
        }

        var srv = await _resolver.LookupAsync(_query.Name, DnsRecordType.SRV, cancellationToken).ConfigureAwait(false);
        if (srv.Status != DnsLookupStatus.Success)
        {
            return new DnsResolution(endpoints, NegativeTtl(srv), true, problems);
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
                // A target whose lookups fail altogether fails the resolution: dropping it would drop a live instance.
                (addresses, ttl) = await ResolveAddressesAsync(data.Target, absolute: true, problems, cancellationToken).ConfigureAwait(false);
            }

            minTtl = Min(minTtl, ttl);
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal) { ["dns.target"] = data.Target };
            foreach (var address in addresses)
            {
                // SRV weight 0 means "a very small chance" (RFC 2782), not "none", which Lodestar's weight 0 means.
                endpoints.Add(DiscoveredEndpoint.Create(address.ToString(), data.Port, weight: Math.Max((int)data.Weight, 1), metadata: metadata, priority: data.Priority));
            }
        }

        return new DnsResolution(endpoints, minTtl, endpoints.Count == 0, problems);
    }

    /// <summary>
    /// Looks up both address families of a name. When one fails and the other has addresses, the addresses are kept and
    /// the failure goes to <paramref name="problems"/>, as a system resolver returns what it found; when neither has
    /// addresses and one failed, the failure is thrown, since it may hide the name's addresses.
    /// </summary>
    private async Task<(List<IPAddress> Addresses, TimeSpan Ttl)> ResolveAddressesAsync(string name, bool absolute, List<Exception> problems, CancellationToken cancellationToken)
    {
        var lookupName = absolute ? name + "." : name;
        var a = LookupOrFailureAsync(lookupName, DnsRecordType.A, cancellationToken);
        var aaaa = LookupOrFailureAsync(lookupName, DnsRecordType.AAAA, cancellationToken);
        await Task.WhenAll(a, aaaa).ConfigureAwait(false);
        var results = new[] { (Type: DnsRecordType.A, Outcome: await a.ConfigureAwait(false)), (Type: DnsRecordType.AAAA, Outcome: await aaaa.ConfigureAwait(false)) };
        var addresses = new List<IPAddress>();
        var ttl = TimeSpan.MaxValue;
        foreach (var (_, (result, _)) in results)
        {
            if (result is null)
            {
                continue;
            }

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

        var failures = results.Where(static r => r.Outcome.Failure is not null).ToList();
        if (failures.Count == 2)
        {
            throw new DnsResolutionException($"Resolving {name} failed for both address families. {failures[0].Outcome.Failure!.Message} {failures[1].Outcome.Failure!.Message}",
                failures[1].Outcome.Failure);
        }

        if (failures.Count == 1)
        {
            var (failedType, (_, failure)) = failures[0];
            if (addresses.Count == 0)
            {
                throw failure!;
            }

            var family = failedType == DnsRecordType.A ? DnsRecordType.AAAA : DnsRecordType.A;
            problems.Add(new DnsResolutionException(
                $"Using the {addresses.Count} {family} address(es) of {name} for service '{ServiceName}' without its {failedType} addresses: {failure!.Message}", failure));
            // The family that failed is asked again soon rather than after the other family's TTL.
            ttl = Min(ttl, _options.NegativeTtl);
        }

        return (addresses, ttl);
    }

    private async Task<(DnsLookupResult? Result, DnsResolutionException? Failure)> LookupOrFailureAsync(string name, DnsRecordType type, CancellationToken cancellationToken)
    {
        try
        {
            return (await _resolver.LookupAsync(name, type, cancellationToken).ConfigureAwait(false), null);
        }
        catch (DnsResolutionException ex)
        {
            return (null, ex);
        }
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
            Log.AddressesRemoved(Logger, ServiceName, string.Join(", ", removed));
        }

        return current;
    }

    private static partial class Log
    {
        [LoggerMessage(10, LogLevel.Debug, "DNS refresh of service {Service} ({Name}): {Count} endpoints; next refresh in {Seconds:0.###} s.", EventName = "DnsRefreshed")]
        public static partial void Refreshed(ILogger logger, string service, string name, int count, double seconds);

        [LoggerMessage(12, LogLevel.Warning, "DNS says service {Service} ({Name}) has no addresses any more.", EventName = "DnsNameGone")]
        public static partial void NameGone(ILogger logger, string service, string name);

        [LoggerMessage(13, LogLevel.Debug, "Addresses left service {Service} in DNS: {Addresses}.", EventName = "DnsAddressesRemoved")]
        public static partial void AddressesRemoved(ILogger logger, string service, string addresses);
    }
}

/// <summary>One resolution of a service: its endpoints, how long they hold, whether DNS said "none", and failures beside them.</summary>
internal sealed record DnsResolution(List<DiscoveredEndpoint> Endpoints, TimeSpan Ttl, bool Negative, IReadOnlyList<Exception> Problems);
