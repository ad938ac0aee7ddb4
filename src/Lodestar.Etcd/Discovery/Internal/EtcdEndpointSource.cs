using System.Globalization;
using Lodestar.Discovery;
using Lodestar.Endpoints;
using Lodestar.Etcd.Client.Internal;
using Lodestar.Etcd.Naming.Internal;
using Lodestar.Internal;
using Microsoft.Extensions.Logging;

namespace Lodestar.Etcd.Discovery.Internal;

/// <summary>
/// Follows the keys of one service in etcd: range the prefix, then watch from the range's revision + 1.
/// </summary>
/// <remarks>
/// <para>A cut stream is resumed from the revision after the last event seen, as clientv3's watcher does; nothing
/// between is lost because etcd replays history from that revision. When that history has been compacted away, etcd
/// cancels the watch with <c>compact_revision</c>, and the only correct answer is a fresh range of the whole prefix,
/// which also catches deletions made meanwhile.</para>
/// <para>Failures back off exponentially with full jitter, capped at <see cref="EtcdOptions.MaxRetryDelay"/>; the
/// backoff starts over once a watch has stayed healthy for <see cref="HealthyPeriod"/>. The last published set stays in
/// force meanwhile.</para>
/// </remarks>
internal sealed partial class EtcdEndpointSource : IEndpointSource
{
    /// <summary>How long a watch must stay up before past failures are forgotten.</summary>
    public static readonly TimeSpan HealthyPeriod = TimeSpan.FromSeconds(10);

    private readonly string _serviceName;
    private readonly string _prefix;
    private readonly EtcdClient _client;
    private readonly EtcdOptions _options;
    private readonly TimeProvider _timeProvider;
    private readonly RandomSource _random;
    private readonly ILogger _logger;

    public EtcdEndpointSource(string serviceName, EtcdClient client, EtcdOptions options, TimeProvider timeProvider, RandomSource random, ILogger logger)
    {
        _serviceName = serviceName;
        _prefix = EtcdNamingFormat.ServicePrefix(options.Prefix, serviceName);
        _client = client;
        _options = options;
        _timeProvider = timeProvider;
        _random = random;
        _logger = logger;
    }

    /// <summary>Test seam: runs before each watch is opened, with the revision it will start from.</summary>
    internal Func<long, CancellationToken, Task>? BeforeWatch { get; set; }

    public async Task RunAsync(IEndpointObserver observer, CancellationToken cancellationToken)
    {
        var backoff = new ExponentialBackoff(TimeSpan.FromMilliseconds(100), _options.MaxRetryDelay, _random);
        var instances = new SortedDictionary<string, DiscoveredEndpoint>(StringComparer.Ordinal);
        long nextRevision = 0;
        while (!cancellationToken.IsCancellationRequested)
        {
            long healthySince = -1;
            try
            {
                if (nextRevision == 0)
                {
                    var range = await _client.RangePrefixAsync(_prefix, cancellationToken).ConfigureAwait(false);
                    instances.Clear();
                    foreach (var kv in range.Kvs)
                    {
                        Apply(kv, isDelete: false, instances, observer);
                    }

                    observer.OnEndpoints([.. instances.Values]);
                    nextRevision = range.Revision + 1;
                    Log.Ranged(_logger, _serviceName, _prefix, instances.Count, range.Revision);
                }

                if (BeforeWatch is { } hook)
                {
                    await hook(nextRevision, cancellationToken).ConfigureAwait(false);
                }

                var stream = await _client.WatchPrefixAsync(_prefix, nextRevision, cancellationToken).ConfigureAwait(false);
                await using (stream.ConfigureAwait(false))
                {
                    while (true)
                    {
                        var message = await stream.ReadAsync(cancellationToken).ConfigureAwait(false)
                                      ?? throw new EtcdException($"etcd at {stream.Address} ended the watch of '{_prefix}'; resuming from revision {nextRevision.ToString(CultureInfo.InvariantCulture)}.");
                        if (message.IsCompacted)
                        {
                            Log.Compacted(_logger, _serviceName, nextRevision, message.CompactRevision);
                            nextRevision = 0;
                            break;
                        }

                        if (message.Canceled)
                        {
                            throw new EtcdException($"etcd at {stream.Address} cancelled the watch of '{_prefix}': {message.CancelReason ?? "no reason given"}.");
                        }

                        if (message.Created && healthySince < 0)
                        {
                            healthySince = _timeProvider.GetTimestamp();
                            Log.Watching(_logger, _serviceName, _prefix, nextRevision);
                        }

                        if (healthySince >= 0 && backoff.Failures > 0 && _timeProvider.GetElapsedTime(healthySince) >= HealthyPeriod)
                        {
                            backoff.Reset();
                        }

                        if (message.Events.Count == 0)
                        {
                            continue;
                        }

                        var changed = false;
                        foreach (var change in message.Events)
                        {
                            changed |= Apply(change.Kv, change.IsDelete, instances, observer);
                        }

                        // Resume after the last event delivered; the header revision may run ahead of events still queued.
                        nextRevision = message.Events[^1].Kv.ModRevision + 1;
                        if (changed)
                        {
                            observer.OnEndpoints([.. instances.Values]);
                        }
                    }
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                if (healthySince >= 0 && _timeProvider.GetElapsedTime(healthySince) >= HealthyPeriod)
                {
                    backoff.Reset();
                }

                var delay = backoff.NextDelay();
                Log.Failed(_logger, _serviceName, delay.TotalMilliseconds, ex.Message);
                observer.OnError(ex as EtcdException ?? new EtcdException($"Watching '{_prefix}' in etcd at {_client.DisplayAddress} failed: {_client.Redact(ex.Message)}", ex));
                try
                {
                    await _timeProvider.DelayAsync(delay, cancellationToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    /// <summary>Applies one key's state; returns whether the instance set changed.</summary>
    private bool Apply(EtcdKeyValue kv, bool isDelete, SortedDictionary<string, DiscoveredEndpoint> instances, IEndpointObserver observer)
    {
        if (isDelete)
        {
            return instances.Remove(kv.Key);
        }

        if (!EtcdNamingFormat.TryParse(kv.Value, out var endpoint, out var error))
        {
            observer.OnError(new FormatException($"etcd key '{kv.Key}' of service '{_serviceName}' is skipped: {error}."));
            return instances.Remove(kv.Key);
        }

        if (endpoint is null)
        {
            // Op 1 (Delete) written as a value: the Go watcher reads it as a removal.
            return instances.Remove(kv.Key);
        }

        if (instances.TryGetValue(kv.Key, out var existing) && existing.IsIdenticalTo(endpoint))
        {
            return false;
        }

        instances[kv.Key] = endpoint;
        return true;
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Debug, "Ranged etcd prefix for service '{Service}' ('{Prefix}'): {Count} instances at revision {Revision}.", EventName = "EtcdRanged")]
        public static partial void Ranged(ILogger logger, string service, string prefix, int count, long revision);

        [LoggerMessage(2, LogLevel.Debug, "Watching etcd for service '{Service}' ('{Prefix}') from revision {Revision}.", EventName = "EtcdWatching")]
        public static partial void Watching(ILogger logger, string service, string prefix, long revision);

        [LoggerMessage(3, LogLevel.Information, "etcd compacted revision {Revision} of service '{Service}' (compacted up to {CompactRevision}); ranging again.", EventName = "EtcdCompacted")]
        public static partial void Compacted(ILogger logger, string service, long revision, long compactRevision);

        [LoggerMessage(4, LogLevel.Debug, "etcd watch of service '{Service}' failed; retrying in {DelayMs:0} ms: {Reason}", EventName = "EtcdWatchFailed")]
        public static partial void Failed(ILogger logger, string service, double delayMs, string reason);
    }
}
