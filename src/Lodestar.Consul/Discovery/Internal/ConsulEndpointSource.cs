using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Text;
using Lodestar.Consul.Internal;
using Lodestar.Discovery;
using Lodestar.Endpoints;
using Microsoft.Extensions.Logging;

namespace Lodestar.Consul.Discovery.Internal;

/// <summary>
/// Follows one service through Consul's blocking health queries and publishes its passing instances, on the discovery
/// loop of <see cref="ListWatchEndpointSource{TCursor}"/> with the blocking-query index as the cursor.
/// </summary>
/// <remarks>
/// <para>
/// Index rules, from Consul's "Blocking Queries" implementation notes: the list is a read without an index; each watch
/// is a blocking query on the last index, and the next index comes from <c>X-Consul-Index</c>. If it goes backwards (a
/// restored snapshot, a new cluster) the index is forgotten rather than kept as a high-water mark: the answer is
/// published and the loop lists again (<see cref="WatchOutcome.Relist"/>). An index below 1 is never sent (1 is always
/// safe to wait on; a known Consul bug answers with index 0). At least <see cref="ConsulOptions.MinQueryInterval"/>
/// passes between the starts of two queries, so an index that keeps changing cannot make the loop spin; a blocking query
/// that returns is one polling round (<see cref="WatchOutcome.Continue"/>), not a reconnect.
/// </para>
/// <para>
/// A blocking query that outlives its wait, plus Consul's jitter of up to wait/16, plus the margin
/// (<see cref="ConsulOptions.RequestTimeout"/>), is stalled (<see cref="StallTimeout"/>): the base ends it and resumes
/// from the same index. Failures (the agent unreachable, an error status, a malformed or oversized answer) are backed
/// off from by the base with <see cref="ConsulOptions.Backoff"/>; the index is kept, and the last published set stays in
/// force. Entries that are null, of the wrong shape or not routable are skipped and reported with their position; the
/// others are published.
/// </para>
/// </remarks>
internal sealed partial class ConsulEndpointSource : ListWatchEndpointSource<long>
{
    public const string ServiceIdKey = "consul.service-id";
    public const string NodeKey = "consul.node";
    public const string DatacenterKey = "consul.datacenter";
    public const string TagsKey = "consul.tags";
    public const string NodeMetaPrefix = "consul.node-meta.";
    public const string SchemeKey = "scheme";

    // A report names this many skipped entries and counts the rest, so that an answer of a million bad entries does not
    // become a message of a million lines.
    private const int MaxProblemsNamed = 10;

    private readonly ConsulApi _api;
    private bool _queried;
    private long _lastQueryStart;
    private long _watchedIndex;

    public ConsulEndpointSource(string serviceName, ConsulApi api, TimeProvider timeProvider, ILogger logger, Func<double>? random = null)
        : base(serviceName, api.Options.Backoff, timeProvider, logger, random)
    {
        _api = api;
    }

    /// <inheritdoc/>
    protected override TimeSpan? StallTimeout => StallTimeoutOf(_api.Options);

    /// <summary>
    /// How long a blocking query may take before it is stalled: its wait, plus Consul's jitter of up to wait/16, plus
    /// the wait before it starts (<see cref="ConsulOptions.MinQueryInterval"/>), plus the margin
    /// (<see cref="ConsulOptions.RequestTimeout"/>).
    /// </summary>
    internal static TimeSpan StallTimeoutOf(ConsulOptions options)
        => options.WaitTime + (options.WaitTime / 16) + options.MinQueryInterval + options.RequestTimeout;

    /// <summary>Turns an entry into an endpoint; a critical entry yields <see langword="true"/> and no endpoint.</summary>
    internal static bool TryConvert(HealthServiceEntry entry, ConsulOptions options, out DiscoveredEndpoint? endpoint, [NotNullWhen(false)] out string? problem)
    {
        endpoint = null;
        problem = entry.Problem;
        if (problem is not null)
        {
            return false;
        }

        var service = entry.Service;
        var node = entry.Node;
        if (service is null)
        {
            problem = "has no Service";
            return false;
        }

        if (!TryWorstStatus(entry.Checks, out var status))
        {
            problem = $"(instance '{service.ID}' on node '{node?.Node}') has a null check";
            return false;
        }

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
                Add(metadata, pair.Key, pair.Value);
            }
        }

        if (node?.Meta is not null)
        {
            foreach (var pair in node.Meta)
            {
                if (pair.Value is not null)
                {
                    metadata[NodeMetaPrefix + pair.Key] = pair.Value;
                }
            }
        }

        Add(metadata, ServiceIdKey, service.ID);
        Add(metadata, NodeKey, node?.Node);
        Add(metadata, DatacenterKey, node?.Datacenter);
        if (service.Tags is { Count: > 0 } tags && tags.Any(static t => t is not null))
        {
            metadata[TagsKey] = string.Join(',', tags.Where(static t => t is not null));
        }

        string? zone = null;
        if (service.Meta?.TryGetValue(options.ZoneMetadataKey, out var serviceZone) == true && serviceZone is not null)
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
            problem = $"(instance '{service.ID}' on node '{node?.Node}') has no address";
            return false;
        }

        if (!DiscoveredEndpoint.TryCreate(host, service.Port, scheme, weight, zone, metadata, 0, out endpoint, out var error))
        {
            problem = $"(instance '{service.ID}' on node '{node?.Node}'): {error}";
            return false;
        }

        return true;
    }

    /// <inheritdoc/>
    protected override async Task<long> ListAsync(WatchContext<long> context, CancellationToken cancellationToken)
    {
        var result = await QueryAsync(0, context, cancellationToken).ConfigureAwait(false);

        // Never block on an index below 1: an index of 0 would make every query return at once.
        return Math.Max(result.Index, 1);
    }

    /// <inheritdoc/>
    protected override async Task<WatchOutcome> WatchAsync(long cursor, WatchContext<long> context, CancellationToken cancellationToken)
    {
        _watchedIndex = cursor;
        var result = await QueryAsync(cursor, context, cancellationToken).ConfigureAwait(false);
        var next = Math.Max(result.Index, 1);
        if (next < cursor)
        {
            // The index went backwards: forget it and start over with a read without an index. The answer just
            // published is already the agent's current data; the list confirms it and brings the index to block on.
            Log.IndexReset(Logger, ServiceName, cursor, result.Index);
            return WatchOutcome.Relist;
        }

        context.Advance(next);
        return WatchOutcome.Continue;
    }

    /// <inheritdoc/>
    /// <remarks>
    /// Errors of the agent's API already name the agent and the request, whose path names the service, and hold no
    /// secret. A stalled blocking query is described with the times it was allowed.
    /// </remarks>
    protected override Exception DescribeError(Exception error)
    {
        switch (error)
        {
            case ConsulException:
                return error;
            case TimeoutException:
                var options = _api.Options;
                return new ConsulException(string.Create(CultureInfo.InvariantCulture,
                    $"Consul at {_api.DisplayAddress}: the blocking query for service '{ServiceName}' at index {_watchedIndex} did not answer within {StallTimeoutOf(options).TotalSeconds:0.###} s (wait {options.WaitTime.TotalSeconds:0.###} s, plus up to wait/16 of Consul's jitter, plus {(options.MinQueryInterval + options.RequestTimeout).TotalSeconds:0.###} s of margin); it was ended and is resumed from the same index."));
            default:
                var redactor = _api.Redactor;
                var text = error.ToString();
                var inner = string.Equals(redactor.Redact(text), text, StringComparison.Ordinal) ? error : null;
                return new ConsulException($"Consul at {_api.DisplayAddress}: following service '{ServiceName}' failed: {redactor.Redact(error.Message)}", inner);
        }
    }

    private async Task<HealthQueryResult> QueryAsync(long index, WatchContext<long> context, CancellationToken cancellationToken)
    {
        await PaceAsync(cancellationToken).ConfigureAwait(false);
        var options = _api.Options;
        var batch = new Batch(options);
        var result = await _api.GetHealthServiceAsync(ServiceName, index, batch.Add, cancellationToken).ConfigureAwait(false);
        if (batch.Problems > 0)
        {
            context.ReportError(new ConsulException(_api.Redactor.Redact(batch.Describe(_api.DisplayAddress, ServiceName, result.Count))!));
        }

        // An answer none of whose entries could be read says nothing about the service: the last good set stays.
        if (result.Count == 0 || batch.Problems < result.Count)
        {
            context.Publish(batch.Endpoints);
        }

        return result;
    }

    /// <summary>Keeps at least <see cref="ConsulOptions.MinQueryInterval"/> between the starts of two queries.</summary>
    private async Task PaceAsync(CancellationToken cancellationToken)
    {
        if (_queried)
        {
            var wait = _api.Options.MinQueryInterval - TimeProvider.GetElapsedTime(_lastQueryStart);
            if (wait > TimeSpan.Zero)
            {
                await Task.Delay(wait, TimeProvider, cancellationToken).ConfigureAwait(false);
            }
        }

        _queried = true;
        _lastQueryStart = TimeProvider.GetTimestamp();
    }

    private static bool TryWorstStatus(List<HealthCheck?>? checks, out string status)
    {
        status = "passing";
        if (checks is null)
        {
            return true;
        }

        foreach (var check in checks)
        {
            switch (check?.Status)
            {
                case null when check is null:
                    return false;
                case "critical":
                case "maintenance":
                    status = "critical";
                    return true;
                case "warning":
                    status = "warning";
                    break;
            }
        }

        return true;
    }

    private static void Add(Dictionary<string, string> metadata, string key, string? value)
    {
        if (!string.IsNullOrEmpty(value))
        {
            metadata[key] = value;
        }
    }

    /// <summary>The endpoints and problems of one answer, filled entry by entry as the answer streams in.</summary>
    private sealed class Batch(ConsulOptions options)
    {
        private readonly StringBuilder _named = new();

        public List<DiscoveredEndpoint> Endpoints { get; } = [];

        public int Problems { get; private set; }

        public void Add(int position, HealthServiceEntry? entry)
        {
            string? problem;
            if (entry is null)
            {
                problem = "is null";
            }
            else if (TryConvert(entry, options, out var endpoint, out problem))
            {
                if (endpoint is not null)
                {
                    Endpoints.Add(endpoint);
                }

                return;
            }

            if (++Problems <= MaxProblemsNamed)
            {
                _named.Append(Problems == 1 ? string.Empty : "; ").Append("entry ").Append(position.ToString(CultureInfo.InvariantCulture)).Append(' ').Append(problem);
            }
        }

        public string Describe(string agent, string service, int count)
        {
            var more = Problems > MaxProblemsNamed ? $"; and {(Problems - MaxProblemsNamed).ToString(CultureInfo.InvariantCulture)} more" : string.Empty;
            var kept = Problems < count ? "the others are published" : "the last good set stays in force";
            return string.Create(CultureInfo.InvariantCulture,
                $"Consul at {agent}: {Problems} of {count} entries for service '{service}' were skipped ({kept}): {_named}{more}");
        }
    }

    private static partial class Log
    {
        [LoggerMessage(2, LogLevel.Information, "Consul index for service {Service} went backwards from {Sent} to {Received}; starting over with a fresh read.", EventName = "ConsulIndexReset")]
        public static partial void IndexReset(ILogger logger, string service, long sent, long received);
    }
}
