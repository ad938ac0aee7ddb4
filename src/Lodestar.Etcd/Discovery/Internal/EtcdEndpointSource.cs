using System.Globalization;
using Lodestar.Discovery;
using Lodestar.Endpoints;
using Lodestar.Etcd.Client.Internal;
using Lodestar.Etcd.Naming.Internal;
using Microsoft.Extensions.Logging;

namespace Lodestar.Etcd.Discovery.Internal;

/// <summary>
/// Follows the keys of one service in etcd: range the prefix, then watch from the range's revision + 1. The cursor is
/// the revision the next watch starts from.
/// </summary>
/// <remarks>
/// <para>A cut stream is resumed from the revision after the last event seen, as clientv3's watcher does; nothing
/// between is lost because etcd replays history from that revision, and nothing is applied twice. When that history has
/// been compacted away, etcd cancels the watch with <c>compact_revision</c>, and the only correct answer is a fresh range
/// of the whole prefix (<see cref="WatchOutcome.Relist"/>), which also catches deletions made meanwhile. A watch etcd
/// cancels for any other reason is a failure.</para>
/// <para>Every watch asks for progress notifications; they, like every other message, count as progress, so a stream
/// that stays silent for <see cref="EtcdOptions.WatchProgressTimeout"/> is taken for stalled and resumed. The cursor
/// moves only with events: a notification proves the stream alive, not that no event is still on its way.</para>
/// <para>An entry that cannot be read (key or value not base64, wrong JSON types, an event behind the cursor) is
/// reported naming the member and the key, or its position when the key itself is unreadable, and skipped; the rest of
/// the answer is applied and the cursor moves past it, so one bad entry never holds the watch back. The loop, the
/// backoff between failures and its reset rule belong to <see cref="ListWatchEndpointSource{TCursor}"/>.</para>
/// </remarks>
internal sealed partial class EtcdEndpointSource : ListWatchEndpointSource<long>
{
    private const int MaxShownKeyLength = 200;

    private readonly string _prefix;
    private readonly EtcdClient _client;
    private readonly TimeSpan? _stallTimeout;
    private readonly SortedDictionary<string, DiscoveredEndpoint> _instances = new(StringComparer.Ordinal);
    private string? _member;
    private long _resumeFrom;

    public EtcdEndpointSource(string serviceName, EtcdClient client, EtcdOptions options, TimeProvider timeProvider, ILogger logger, Func<double>? random = null)
        : base(serviceName, options.Backoff, timeProvider, logger, random)
    {
        _prefix = EtcdNamingFormat.ServicePrefix(options.Prefix, serviceName);
        _client = client;
        _stallTimeout = options.WatchProgressTimeout == Timeout.InfiniteTimeSpan ? null : options.WatchProgressTimeout;
    }

    /// <summary>Test seam: runs before each watch is opened, with the revision it will start from.</summary>
    internal Func<long, CancellationToken, Task>? BeforeWatch { get; set; }

    /// <inheritdoc/>
    protected override TimeSpan? StallTimeout => _stallTimeout;

    /// <inheritdoc/>
    protected override async Task<long> ListAsync(WatchContext<long> context, CancellationToken cancellationToken)
    {
        var range = await _client.RangePrefixAsync(_prefix, cancellationToken).ConfigureAwait(false);
        _member = range.Address;
        _instances.Clear();
        var count = range.Kvs.Count;
        for (var i = 0; i < count; i++)
        {
            var kv = range.Kvs[i];
            var position = string.Create(CultureInfo.InvariantCulture, $"entry {i + 1} of {count} in the range of '{_prefix}' at revision {range.Revision}");
            if (kv.Problem is { } problem)
            {
                context.ReportError(Unreadable(range.Address, kv, position, problem));
                if (kv.HasKey)
                {
                    _instances.Remove(kv.Key);
                }

                continue;
            }

            Apply(kv, isDelete: false, range.Address, position, context);
        }

        context.Publish([.. _instances.Values]);
        _resumeFrom = range.Revision + 1;
        Log.Ranged(Logger, ServiceName, _prefix, _instances.Count, range.Revision, range.Address);
        return range.Revision + 1;
    }

    /// <inheritdoc/>
    protected override async Task<WatchOutcome> WatchAsync(long cursor, WatchContext<long> context, CancellationToken cancellationToken)
    {
        _resumeFrom = cursor;
        if (BeforeWatch is { } hook)
        {
            await hook(cursor, cancellationToken).ConfigureAwait(false);
        }

        EtcdWatchStream stream;
        try
        {
            // Opening reads the first message too, so it can be the oversized one.
            stream = await _client.WatchPrefixAsync(_prefix, cursor, cancellationToken).ConfigureAwait(false);
        }
        catch (RegistryResponseTooLargeException ex)
        {
            return TooLarge(ex, context);
        }

        await using (stream.ConfigureAwait(false))
        {
            var member = stream.Address;
            _member = member;
            var next = cursor;
            while (true)
            {
                EtcdWatchResponse? message;
                try
                {
                    message = await stream.ReadAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (RegistryResponseTooLargeException ex)
                {
                    return TooLarge(ex, context);
                }

                if (message is null)
                {
                    return WatchOutcome.Reconnect;
                }

                if (message.IsCompacted)
                {
                    Log.Compacted(Logger, ServiceName, next, message.CompactRevision);
                    return WatchOutcome.Relist;
                }

                if (message.Canceled)
                {
                    throw new EtcdException($"etcd at {member} cancelled the watch of '{_prefix}': {message.CancelReason ?? "no reason given"}.")
                    {
                        Address = member,
                        IsInvalidToken = EtcdClient.IsTokenProblem(message.CancelReason),
                    };
                }

                if (message.Created)
                {
                    Log.Watching(Logger, ServiceName, _prefix, next, member);
                    context.KeepAlive();
                    continue;
                }

                if (message.IsProgressNotify)
                {
                    Log.Progress(Logger, ServiceName, member, message.Revision);
                    context.KeepAlive();
                    continue;
                }

                var changed = false;
                var count = message.Events.Count;
                for (var i = 0; i < count; i++)
                {
                    var change = message.Events[i];
                    var kv = change.Kv;
                    var position = string.Create(CultureInfo.InvariantCulture, $"event {i + 1} of {count} of the watch of '{_prefix}' at revision {message.Revision}");
                    if (kv.Problem is { } problem)
                    {
                        context.ReportError(Unreadable(member, kv, position, problem));
                        if (kv.ModRevision < next)
                        {
                            continue;
                        }

                        if (kv.HasKey && !change.IsDelete)
                        {
                            // The key's current value cannot be read, so its old one is no longer true either.
                            changed |= _instances.Remove(kv.Key);
                        }
                    }
                    else if (kv.ModRevision < next)
                    {
                        // Revisions only grow on a watch: an event behind the cursor is a replay or a server gone wrong.
                        context.ReportError(new FormatException(string.Create(CultureInfo.InvariantCulture,
                            $"etcd at {member} sent key '{Shown(kv.Key)}' ({position}) with mod_revision {kv.ModRevision}, behind revision {next} that the watch had reached; ignored.")));
                        continue;
                    }
                    else
                    {
                        changed |= Apply(kv, change.IsDelete, member, position, context);
                    }

                    next = kv.ModRevision + 1;
                }

                if (changed)
                {
                    context.Publish([.. _instances.Values]);
                }

                // Resume after the last event delivered; the header revision may run ahead of events still queued.
                if (next != _resumeFrom)
                {
                    _resumeFrom = next;
                    context.Advance(next);
                }
                else
                {
                    context.KeepAlive();
                }
            }
        }
    }

    /// <inheritdoc/>
    protected override Exception DescribeError(Exception error)
    {
        var member = (error as EtcdException)?.Address ?? _member ?? _client.DisplayAddress;
        var text = error is TimeoutException && _stallTimeout is { } timeout
            ? string.Create(CultureInfo.InvariantCulture,
                $"etcd at {member} sent nothing on the watch for {timeout.TotalSeconds:0.###} s ({nameof(EtcdOptions)}.{nameof(EtcdOptions.WatchProgressTimeout)}), not even a progress notification; watching again from revision {_resumeFrom}. If the stream is healthy but quiet, the timeout is below 2.5 times the server's --experimental-watch-progress-notify-interval (10 minutes by default).")
            : _client.Redact(error.Message);
        if (!text.Contains("etcd at ", StringComparison.Ordinal))
        {
            // Messages of the client name the member they came from; anything else gets the member last used.
            text = $"etcd at {member}: {text}";
        }

        var etcd = error as EtcdException;
        return new EtcdException($"etcd source, service '{ServiceName}' (prefix '{_prefix}'): {text}")
        {
            Address = member,
            Cause = etcd?.Cause,
            GrpcCode = etcd?.GrpcCode ?? 0,
            IsInvalidToken = etcd?.IsInvalidToken ?? false,
            IsUnreachable = etcd?.IsUnreachable ?? false,
        };
    }

    /// <summary>Reports an oversized watch message and asks for a fresh range.</summary>
    /// <remarks>The same revision would bring the same message again; a range jumps past it.</remarks>
    private WatchOutcome TooLarge(RegistryResponseTooLargeException error, WatchContext<long> context)
    {
        context.ReportError(DescribeError(error));
        Log.MessageTooLarge(Logger, ServiceName, _member ?? _client.DisplayAddress, error.Limit);
        return WatchOutcome.Relist;
    }

    private static string Shown(string key) => key.Length <= MaxShownKeyLength ? key : string.Concat(key.AsSpan(0, MaxShownKeyLength), "...");

    private FormatException Unreadable(string member, EtcdKeyValue kv, string position, string problem)
        => new(kv.HasKey
            ? $"etcd at {member} sent key '{Shown(kv.Key)}' ({position}) of service '{ServiceName}' that {problem}; skipped."
            : $"etcd at {member} sent {position}, of service '{ServiceName}', that {problem}; skipped.");

    /// <summary>Applies one key's state; returns whether the instance set changed.</summary>
    private bool Apply(EtcdKeyValue kv, bool isDelete, string member, string position, WatchContext<long> context)
    {
        if (!kv.Key.StartsWith(_prefix, StringComparison.Ordinal))
        {
            context.ReportError(new FormatException($"etcd at {member} sent key '{Shown(kv.Key)}' ({position}), which is outside the prefix '{_prefix}'; ignored."));
            return false;
        }

        if (isDelete)
        {
            return _instances.Remove(kv.Key);
        }

        if (!EtcdNamingFormat.TryParse(kv.Value, out var endpoint, out var error))
        {
            context.ReportError(new FormatException($"etcd key '{Shown(kv.Key)}' of service '{ServiceName}' from etcd at {member} is skipped: {error}."));
            return _instances.Remove(kv.Key);
        }

        if (endpoint is null)
        {
            // Op 1 (Delete) written as a value: the Go watcher reads it as a removal.
            return _instances.Remove(kv.Key);
        }

        if (_instances.TryGetValue(kv.Key, out var existing) && existing.IsIdenticalTo(endpoint))
        {
            return false;
        }

        _instances[kv.Key] = endpoint;
        return true;
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Debug, "Ranged etcd prefix for service '{Service}' ('{Prefix}') at {Member}: {Count} instances at revision {Revision}.", EventName = "EtcdRanged")]
        public static partial void Ranged(ILogger logger, string service, string prefix, int count, long revision, string member);

        [LoggerMessage(2, LogLevel.Debug, "Watching etcd at {Member} for service '{Service}' ('{Prefix}') from revision {Revision}.", EventName = "EtcdWatching")]
        public static partial void Watching(ILogger logger, string service, string prefix, long revision, string member);

        [LoggerMessage(3, LogLevel.Information, "etcd compacted revision {Revision} of service '{Service}' (compacted up to {CompactRevision}); ranging again.", EventName = "EtcdCompacted")]
        public static partial void Compacted(ILogger logger, string service, long revision, long compactRevision);

        [LoggerMessage(5, LogLevel.Trace, "etcd at {Member} sent a progress notification on the watch of service '{Service}' (store at revision {Revision}).", EventName = "EtcdWatchProgress")]
        public static partial void Progress(ILogger logger, string service, string member, long revision);

        [LoggerMessage(6, LogLevel.Debug, "etcd at {Member} sent a watch message for service '{Service}' larger than {Limit} bytes; ranging again.", EventName = "EtcdWatchMessageTooLarge")]
        public static partial void MessageTooLarge(ILogger logger, string service, string member, long limit);
    }
}
