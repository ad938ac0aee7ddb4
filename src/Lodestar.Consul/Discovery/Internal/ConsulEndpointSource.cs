using System.Diagnostics;
using System.Globalization;
using Lodestar.Consul.Internal;
using Lodestar.Discovery;
using Lodestar.Endpoints;
using Lodestar.Internal;
using Microsoft.Extensions.Logging;

namespace Lodestar.Consul.Discovery.Internal;

/// <summary>
/// Follows one service through Consul's blocking health queries and publishes its passing instances.
/// </summary>
/// <remarks>
/// Index rules, from Consul's "Blocking Queries" implementation notes: the next index comes from
/// <c>X-Consul-Index</c>; if it goes backwards (a restored snapshot, a new cluster) the old index is forgotten rather than
/// kept as a high-water mark; an index below 1 is never sent (1 is always safe to wait on); and at least
/// <see cref="ConsulOptions.MinQueryInterval"/> passes between the starts of two queries, so an index that keeps changing
/// cannot make the loop spin. Errors are reported and retried with capped, jittered exponential backoff; the index is
/// kept, and the last published set stays in force.
/// </remarks>
internal sealed partial class ConsulEndpointSource : IEndpointSource
{
    public const string ServiceIdKey = "consul.service-id";
    public const string NodeKey = "consul.node";
    public const string DatacenterKey = "consul.datacenter";
    public const string TagsKey = "consul.tags";
    public const string NodeMetaPrefix = "consul.node-meta.";
    public const string SchemeKey = "scheme";

    private readonly string _serviceName;
    private readonly ConsulApi _api;
    private readonly TimeProvider _timeProvider;
    private readonly RandomSource _random;
    private readonly ILogger _logger;

    public ConsulEndpointSource(string serviceName, ConsulApi api, TimeProvider timeProvider, RandomSource random, ILogger logger)
    {
        _serviceName = serviceName;
        _api = api;
        _timeProvider = timeProvider;
        _random = random;
        _logger = logger;
    }

    /// <summary>Gets the number of queries sent, for tests.</summary>
    internal long Queries { get; private set; }

    public async Task RunAsync(IEndpointObserver observer, CancellationToken cancellationToken)
    {
        var options = _api.Options;
        var backoff = new ExponentialBackoff(options.RetryInitialDelay, options.RetryMaxDelay, _random);
        long index = 0;
        while (!cancellationToken.IsCancellationRequested)
        {
            var started = _timeProvider.GetTimestamp();
            HealthQueryResult result;
            try
            {
                Queries++;
                result = await _api.GetHealthServiceAsync(_serviceName, index, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                var error = ex as ConsulException ?? new ConsulException($"Consul at {_api.DisplayAddress}: querying service '{_serviceName}' failed: {ex.Message}", ex);
                observer.OnError(error);
                var delay = backoff.NextDelay();
                Log.QueryFailed(_logger, _serviceName, backoff.Failures, delay.TotalMilliseconds);
                if (!await DelayAsync(delay, cancellationToken).ConfigureAwait(false))
                {
                    return;
                }

                continue;
            }

            backoff.Reset();
            index = NextIndex(index, result.Index);
            Publish(observer, result.Entries, options);

            // Rate limit: however fast the agent answers, do not start queries closer together than the minimum.
            var elapsed = _timeProvider.GetElapsedTime(started);
            if (!await DelayAsync(options.MinQueryInterval - elapsed, cancellationToken).ConfigureAwait(false))
            {
                return;
            }
        }
    }

    /// <summary>Applies Consul's index rules to the index an answer carried.</summary>
    internal long NextIndex(long sent, long received)
    {
        if (received < sent)
        {
            // The index went backwards: forget the old one. Resetting to 0 and then applying the "at least 1" rule
            // below leaves the index the agent just reported, whose data this answer already holds.
            Log.IndexReset(_logger, _serviceName, sent, received);
        }

        // Never block on an index below 1: an index of 0 would make every query return at once (a known Consul bug
        // answers X-Consul-Index: 0), and 1 is always safe to wait on.
        return Math.Max(received, 1);
    }

    internal void Publish(IEndpointObserver observer, List<HealthServiceEntry> entries, ConsulOptions options)
    {
        var endpoints = new List<DiscoveredEndpoint>(entries.Count);
        List<string>? problems = null;
        foreach (var entry in entries)
        {
            if (TryConvert(entry, options, out var endpoint, out var problem))
            {
                if (endpoint is not null)
                {
                    endpoints.Add(endpoint);
                }
            }
            else
            {
                (problems ??= []).Add(problem);
            }
        }

        if (problems is not null)
        {
            observer.OnError(new ConsulException(
                $"Consul at {_api.DisplayAddress}: {problems.Count.ToString(CultureInfo.InvariantCulture)} instance(s) of service '{_serviceName}' were skipped: {string.Join("; ", problems)}"));
        }

        observer.OnEndpoints(endpoints);
    }

    /// <summary>Turns an entry into an endpoint; a critical entry yields <see langword="true"/> and no endpoint.</summary>
    internal static bool TryConvert(HealthServiceEntry entry, ConsulOptions options, out DiscoveredEndpoint? endpoint, [System.Diagnostics.CodeAnalysis.NotNullWhen(false)] out string? problem)
    {
        endpoint = null;
        problem = null;
        var service = entry.Service;
        var node = entry.Node;
        if (service is null)
        {
            problem = "an entry has no Service";
            return false;
        }

        var status = WorstStatus(entry.Checks);
        if (status == "critical" || (options.PassingOnly && status == "warning"))
        {
            // The agent filters with ?passing already; this guards against answers that did not.
            return true;
        }

        var weights = service.Weights;
        var weight = status == "warning" ? weights?.Warning ?? 1 : weights?.Passing ?? 1;
        weight = Math.Clamp(weight, 0, DiscoveredEndpoint.MaxWeight);

        // Consul's rule: an empty service address means the node's address.
        var host = string.IsNullOrWhiteSpace(service.Address) ? node?.Address : service.Address;
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        if (service.Meta is not null)
        {
            foreach (var pair in service.Meta)
            {
                metadata[pair.Key] = pair.Value;
            }
        }

        if (node?.Meta is not null)
        {
            foreach (var pair in node.Meta)
            {
                metadata[NodeMetaPrefix + pair.Key] = pair.Value;
            }
        }

        Add(metadata, ServiceIdKey, service.ID);
        Add(metadata, NodeKey, node?.Node);
        Add(metadata, DatacenterKey, node?.Datacenter);
        if (service.Tags is { Count: > 0 } tags)
        {
            metadata[TagsKey] = string.Join(',', tags);
        }

        string? zone = null;
        if (service.Meta?.TryGetValue(options.ZoneMetadataKey, out var serviceZone) == true)
        {
            zone = serviceZone;
        }
        else if (node?.Meta?.TryGetValue(options.ZoneMetadataKey, out var nodeZone) == true)
        {
            zone = nodeZone;
        }

        string? scheme = null;
        if (service.Meta?.TryGetValue(SchemeKey, out var schemeText) == true
            && (string.Equals(schemeText, "http", StringComparison.OrdinalIgnoreCase) || string.Equals(schemeText, "https", StringComparison.OrdinalIgnoreCase)))
        {
            scheme = schemeText;
        }

        if (host is null)
        {
            problem = $"instance '{service.ID}' on node '{node?.Node}': no address";
            return false;
        }

        if (!DiscoveredEndpoint.TryCreate(host, service.Port, scheme, weight, zone, metadata, 0, out endpoint, out var error))
        {
            problem = $"instance '{service.ID}' on node '{node?.Node}': {error}";
            return false;
        }

        return true;
    }

    private static string WorstStatus(List<HealthCheck>? checks)
    {
        var worst = "passing";
        if (checks is null)
        {
            return worst;
        }

        foreach (var check in checks)
        {
            switch (check.Status)
            {
                case "critical":
                case "maintenance":
                    return "critical";
                case "warning":
                    worst = "warning";
                    break;
            }
        }

        return worst;
    }

    private static void Add(Dictionary<string, string> metadata, string key, string? value)
    {
        if (!string.IsNullOrEmpty(value))
        {
            metadata[key] = value;
        }
    }

    private async Task<bool> DelayAsync(TimeSpan delay, CancellationToken cancellationToken)
    {
        try
        {
            await _timeProvider.DelayAsync(delay, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (OperationCanceledException)
        {
            Debug.Assert(cancellationToken.IsCancellationRequested, "Only the loop's own token cancels its delays.");
            return false;
        }
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Debug, "Consul query for service {Service} failed ({Failures} in a row); retrying in {DelayMs} ms.", EventName = "ConsulQueryFailed")]
        public static partial void QueryFailed(ILogger logger, string service, int failures, double delayMs);

        [LoggerMessage(2, LogLevel.Information, "Consul index for service {Service} went backwards from {Sent} to {Received}; starting over with a fresh read.", EventName = "ConsulIndexReset")]
        public static partial void IndexReset(ILogger logger, string service, long sent, long received);
    }
}
