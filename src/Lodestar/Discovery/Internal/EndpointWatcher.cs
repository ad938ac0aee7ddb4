using System.Collections.Immutable;
using System.Globalization;
using System.Runtime.CompilerServices;
using Lodestar.Diagnostics;
using Lodestar.Diagnostics.Internal;
using Lodestar.Endpoints;
using Lodestar.Http.Internal;
using Lodestar.Internal;
using Microsoft.Extensions.Logging;

namespace Lodestar.Discovery.Internal;

/// <summary>
/// Runs one <see cref="IEndpointSource"/> for one service and keeps its last good snapshot.
/// </summary>
/// <remarks>
/// <para>
/// Concurrency rule: the source calls the observer methods from its own loop, one at a time. The current set is
/// published with a single volatile write; readers never lock. Subscribers are an immutable array swapped under
/// <see cref="_gate"/>, and are called outside it.
/// </para>
/// <para>
/// A failing registry (list or watch failures from <see cref="ListWatchEndpointSource{TCursor}"/>) is an outage: its
/// first failure is logged at Warning, later ones at most once every <see cref="OutageLogInterval"/> while it lasts
/// (with how long and how many), the others at Debug, and its end (the source's next progress) at Information. Every
/// failure still counts in <c>lodestar.discovery.errors</c> and reaches the subscribers.
/// </para>
/// </remarks>
internal sealed partial class EndpointWatcher : IEndpointObserver, IReconnectObserver, IAsyncDisposable, IDiscoveryMetricsSource
{
    private const int MaxEndpointEventsPerChange = 8;

    /// <summary>While an outage lasts, its failures are logged at Warning at most this often.</summary>
    public static readonly TimeSpan OutageLogInterval = TimeSpan.FromMinutes(1);

    /// <summary>An endpoint-set change log names at most this many added and this many removed addresses.</summary>
    public const int MaxLoggedAddresses = 10;

    private readonly IEndpointSource _source;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger _logger;
    private readonly LodestarMetrics? _metrics;
    private readonly ConnectionRetirer? _retirer;
    private readonly CancellationTokenSource _stopping = new();
    private readonly TaskCompletionSource<EndpointSet> _first = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Lock _gate = new();
    private ImmutableArray<Subscription> _subscriptions = [];
    private volatile EndpointSet? _current;
    private volatile Exception? _lastError;
    private Task _loop = Task.CompletedTask;
    private volatile StrongBox<DateTimeOffset>? _lastErrorAt;
    private long _version;
    private long _lastConfirmed;
    private long _reconnects;

    // Outage state, touched only from the source's loop (one call at a time).
    private bool _failing;
    private long _outageStarted;
    private long _lastOutageLog;
    private int _outageFailures;
    private int _unloggedFailures;

    public EndpointWatcher(string serviceName, string sourceName, IEndpointSource source, TimeProvider timeProvider, ILogger logger, LodestarMetrics? metrics = null,
        ConnectionRetirer? retirer = null)
    {
        _retirer = retirer;
        _metrics = metrics;
        ServiceName = serviceName;
        SourceName = sourceName;
        _source = source;
        _timeProvider = timeProvider;
        _logger = logger;
    }

    public string ServiceName { get; }

    public string SourceName { get; }

    public EndpointSet? Current => _current;

    public Exception? LastError => _lastError;

    /// <summary>Gets when <see cref="LastError"/> was reported, or <see langword="null"/> when there is none.</summary>
    public DateTimeOffset? LastErrorAt => _lastError is null ? null : _lastErrorAt?.Value;

    /// <summary>Gets how many times the source's watch was restarted.</summary>
    public long Reconnects => Interlocked.Read(ref _reconnects);

    int? IDiscoveryMetricsSource.EndpointCount => _current?.Count;

    TimeSpan? IDiscoveryMetricsSource.Staleness => _current is null ? null : _timeProvider.GetElapsedTime(Interlocked.Read(ref _lastConfirmed));

    public void Start()
    {
        _metrics?.Track(this);
        // Background work must not capture the first caller's ExecutionContext (its Activity, AsyncLocals).
        using (ExecutionContext.SuppressFlow())
        {
            _loop = Task.Run(() => RunLoopAsync(_stopping.Token));
        }
    }

    public ValueTask<EndpointSet> GetAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        var current = _current;
        return current is not null ? new ValueTask<EndpointSet>(current) : new ValueTask<EndpointSet>(WaitForFirstAsync(timeout, cancellationToken));
    }

    public IDisposable Subscribe(Action<EndpointSet> onChange, Action<Exception>? onError)
    {
        var subscription = new Subscription(this, onChange, onError);
        lock (_gate)
        {
            _subscriptions = _subscriptions.Add(subscription);
        }

        // A subscriber starts from the current state: the last good set, and the error standing beside it (or before the
        // first set). A publication racing this call may hand it the same set too; Deliver keeps each version to once.
        if (_current is { } current)
        {
            subscription.Deliver(current);
        }

        if (_lastError is { } error)
        {
            subscription.OnError?.Invoke(error);
        }

        return subscription;
    }

    void IEndpointObserver.OnEndpoints(IReadOnlyList<DiscoveredEndpoint> endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        var previous = _current;
        Interlocked.Exchange(ref _lastConfirmed, _timeProvider.GetTimestamp());
        EndOutage();
        if (previous is not null && previous.HasSameEndpoints(endpoints as IReadOnlyCollection<DiscoveredEndpoint> ?? endpoints.ToArray()))
        {
            ClearError();
            return;
        }

        var set = EndpointSet.Create(ServiceName, SourceName, endpoints, ++_version, _timeProvider.GetUtcNow());
        _current = set;
        ClearError();
        _metrics?.RecordDiscoveryUpdate(ServiceName, SourceName);
        LogChange(previous, set);
        RecordChangeEvents(previous, set);
        _first.TrySetResult(set);
        try
        {
            _retirer?.OnSetChanged(previous, set);
        }
        catch (Exception ex)
        {
            Log.SubscriberFailed(_logger, ServiceName, SourceName, ex);
        }

        foreach (var subscription in _subscriptions)
        {
            try
            {
                subscription.Deliver(set);
            }
            catch (Exception ex)
            {
                Log.SubscriberFailed(_logger, ServiceName, SourceName, ex);
            }
        }
    }

    void IEndpointReconnectObserver.OnReconnect()
    {
        Interlocked.Increment(ref _reconnects);
        _metrics?.RecordDiscoveryReconnect(ServiceName, SourceName);
    }

    void IReconnectObserver.OnFailure(Exception error)
    {
        ArgumentNullException.ThrowIfNull(error);
        var now = _timeProvider.GetTimestamp();
        if (!_failing)
        {
            _failing = true;
            _outageStarted = now;
            _lastOutageLog = now;
            _outageFailures = 1;
            _unloggedFailures = 0;
            LogError(error);
        }
        else
        {
            _outageFailures++;
            if (_timeProvider.GetElapsedTime(_lastOutageLog, now) >= OutageLogInterval)
            {
                _lastOutageLog = now;
                var current = _current;
                Log.SourceStillFailing(_logger, ServiceName, SourceName, _timeProvider.GetElapsedTime(_outageStarted, now).TotalSeconds, _outageFailures,
                    _unloggedFailures, current?.Version ?? 0, current?.Count ?? 0, error.Message);
                _unloggedFailures = 0;
            }
            else
            {
                _unloggedFailures++;
                Log.SourceFailureRepeated(_logger, ServiceName, SourceName, _outageFailures, error.Message);
            }
        }

        Deliver(error);
    }

    void IReconnectObserver.OnProgress() => EndOutage();

    void IEndpointObserver.OnError(Exception error)
    {
        ArgumentNullException.ThrowIfNull(error);
        LogError(error);
        Deliver(error);
    }

    public async ValueTask DisposeAsync()
    {
        _metrics?.Untrack(this);
        await _stopping.CancelAsync().ConfigureAwait(false);
        try
        {
            await _loop.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }

        _stopping.Dispose();
    }

    private void LogError(Exception error)
    {
        if (_current is { } current)
        {
            Log.SourceError(_logger, ServiceName, SourceName, current.Count, current.Version, error.Message);
        }
        else
        {
            Log.SourceErrorBeforeFirstSet(_logger, ServiceName, SourceName, error.Message);
        }
    }

    private void Deliver(Exception error)
    {
        var previousError = _lastError;
        _lastErrorAt = new StrongBox<DateTimeOffset>(_timeProvider.GetUtcNow());
        _lastError = error;
        _metrics?.RecordDiscoveryError(ServiceName, SourceName);
        if (previousError is null || previousError.Message != error.Message)
        {
            // A source that keeps failing the same way reports on every retry; the ring records the change only.
            _metrics?.Events?.Append(LodestarEventKind.SourceError, ServiceName, SourceName, detail: error.Message);
        }

        foreach (var subscription in _subscriptions)
        {
            try
            {
                subscription.OnError?.Invoke(error);
            }
            catch (Exception ex)
            {
                Log.SubscriberFailed(_logger, ServiceName, SourceName, ex);
            }
        }
    }

    private void EndOutage()
    {
        if (!_failing)
        {
            return;
        }

        _failing = false;
        Log.SourceRecovered(_logger, ServiceName, SourceName, _timeProvider.GetElapsedTime(_outageStarted).TotalSeconds, _outageFailures);
    }

    private async Task<EndpointSet> WaitForFirstAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        try
        {
            return await _first.Task.WaitAsync(timeout, _timeProvider, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            var error = _lastError;
            var message = $"No endpoints for service '{ServiceName}' arrived from source '{SourceName}' within {timeout.TotalSeconds:0.###} s."
                          + (error is null ? " The source has reported no error yet." : " Last error: " + error.Message);
            throw new EndpointResolutionException(message, error) { ServiceName = ServiceName };
        }
    }

    private async Task RunLoopAsync(CancellationToken cancellationToken)
    {
        // Restarts of a source that returned or threw (which the contract forbids): 200 ms doubling to 10 s.
        var backoff = new Backoff(new BackoffOptions { InitialDelay = TimeSpan.FromMilliseconds(200), MaxDelay = TimeSpan.FromSeconds(10) }, _timeProvider);
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await _source.RunAsync(this, cancellationToken).ConfigureAwait(false);
                if (cancellationToken.IsCancellationRequested)
                {
                    return;
                }

                Log.SourceReturned(_logger, ServiceName, SourceName);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                // The source contract says it never throws; if one does, keep the last good set and restart it.
                Log.SourceCrashed(_logger, ServiceName, SourceName, ex);
                ((IEndpointObserver)this).OnError(ex);
            }

            try
            {
                await _timeProvider.DelayAsync(backoff.NextDelay(), cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            Interlocked.Increment(ref _reconnects);
            _metrics?.RecordDiscoveryReconnect(ServiceName, SourceName);
        }
    }

    private void ClearError()
    {
        if (_lastError is not null)
        {
            _lastError = null;
            _metrics?.Events?.Append(LodestarEventKind.SourceRecovered, ServiceName, SourceName);
        }
    }

    private void RecordChangeEvents(EndpointSet? previous, EndpointSet set)
    {
        if (_metrics?.Events is not { } events)
        {
            return;
        }

        var before = previous is null ? [] : previous.Endpoints.ToHashSet();
        var after = set.Endpoints.ToHashSet();
        var added = set.Endpoints.Where(e => !before.Contains(e)).ToList();
        var removed = before.Where(e => !after.Contains(e)).ToList();
        RecordEach(events, LodestarEventKind.EndpointAdded, added, "added");
        RecordEach(events, LodestarEventKind.EndpointRemoved, removed, "removed");
    }

    private void RecordEach(LodestarEventLog events, LodestarEventKind kind, List<DiscoveredEndpoint> endpoints, string verb)
    {
        // One event per endpoint for small changes; a large change (a first set of hundreds) is one event, so that it
        // cannot push every other event out of the ring.
        if (endpoints.Count > MaxEndpointEventsPerChange)
        {
            events.Append(kind, ServiceName, SourceName, detail: string.Create(CultureInfo.InvariantCulture,
                $"{endpoints.Count} endpoints {verb}: {string.Join(", ", endpoints.Take(MaxEndpointEventsPerChange).Select(e => e.Address))}, ..."));
            return;
        }

        foreach (var endpoint in endpoints)
        {
            events.Append(kind, ServiceName, SourceName, endpoint.Address);
        }
    }

    private void LogChange(EndpointSet? previous, EndpointSet set)
    {
        if (!_logger.IsEnabled(LogLevel.Information))
        {
            return;
        }

        var before = previous is null ? [] : previous.Endpoints.ToHashSet();
        var after = set.Endpoints.ToHashSet();
        var added = set.Endpoints.Where(e => !before.Contains(e)).ToList();
        var removed = previous is null ? [] : previous.Endpoints.Where(e => !after.Contains(e)).ToList();
        Log.EndpointsChanged(_logger, ServiceName, SourceName, set.Version, set.Count, added.Count, DescribeAddresses(added), removed.Count,
            DescribeAddresses(removed));
    }

    /// <summary>Lists the first <see cref="MaxLoggedAddresses"/> addresses, then how many more: <c>[a, b, +3 more]</c>.</summary>
    internal static string DescribeAddresses(IReadOnlyList<DiscoveredEndpoint> endpoints)
    {
        if (endpoints.Count == 0)
        {
            return "[]";
        }

        var text = new System.Text.StringBuilder("[");
        for (var i = 0; i < endpoints.Count && i < MaxLoggedAddresses; i++)
        {
            if (i > 0)
            {
                text.Append(", ");
            }

            text.Append(endpoints[i].ToString());
        }

        if (endpoints.Count > MaxLoggedAddresses)
        {
            text.Append(", +").Append(endpoints.Count - MaxLoggedAddresses).Append(" more");
        }

        return text.Append(']').ToString();
    }

    private void Unsubscribe(Subscription subscription)
    {
        lock (_gate)
        {
            _subscriptions = _subscriptions.Remove(subscription);
        }
    }

    private sealed class Subscription(EndpointWatcher owner, Action<EndpointSet> onChange, Action<Exception>? onError) : IDisposable
    {
        private long _delivered;

        /// <summary>Hands the subscriber a set newer than any it was handed; an equal or older version is dropped.</summary>
        public void Deliver(EndpointSet set)
        {
            long seen;
            do
            {
                seen = Volatile.Read(ref _delivered);
                if (set.Version <= seen)
                {
                    return;
                }
            }
            while (Interlocked.CompareExchange(ref _delivered, set.Version, seen) != seen);

            onChange(set);
        }

        public Action<Exception>? OnError { get; } = onError;

        public void Dispose() => owner.Unsubscribe(this);
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Information, "Endpoints of service {Service} from source {Source} changed to version {Version}: {Count} endpoints; {Added} added {AddedEndpoints}, {Removed} removed {RemovedEndpoints}.", EventName = "EndpointsChanged")]
        public static partial void EndpointsChanged(ILogger logger, string service, string source, long version, int count, int added, string addedEndpoints, int removed,
            string removedEndpoints);

        [LoggerMessage(2, LogLevel.Warning, "Source {Source} reported an error for service {Service}; the last good set (version {Version}, {Count} endpoints) stays in force: {Error}", EventName = "SourceError")]
        public static partial void SourceError(ILogger logger, string service, string source, int count, long version, string error);

        [LoggerMessage(6, LogLevel.Warning, "Source {Source} reported an error for service {Service} before its first endpoint set: {Error}", EventName = "SourceErrorBeforeFirstSet")]
        public static partial void SourceErrorBeforeFirstSet(ILogger logger, string service, string source, string error);

        [LoggerMessage(3, LogLevel.Error, "Source {Source} for service {Service} threw; it is restarted with backoff.", EventName = "SourceCrashed")]
        public static partial void SourceCrashed(ILogger logger, string service, string source, Exception exception);

        [LoggerMessage(4, LogLevel.Warning, "Source {Source} for service {Service} stopped on its own; it is restarted with backoff.", EventName = "SourceReturned")]
        public static partial void SourceReturned(ILogger logger, string service, string source);

        [LoggerMessage(7, LogLevel.Warning, "Source {Source} for service {Service} has been failing for {Seconds:0} s ({Failures} failures, {Unlogged} not logged since the last warning); the last good set (version {Version}, {Count} endpoints) stays in force. Latest error: {Error}", EventName = "SourceStillFailing")]
        public static partial void SourceStillFailing(ILogger logger, string service, string source, double seconds, int failures, int unlogged, long version, int count, string error);

        [LoggerMessage(8, LogLevel.Debug, "Source {Source} for service {Service} failed again ({Failures} failures in this outage): {Error}", EventName = "SourceFailureRepeated")]
        public static partial void SourceFailureRepeated(ILogger logger, string service, string source, int failures, string error);

        [LoggerMessage(9, LogLevel.Information, "Source {Source} for service {Service} recovered after {Seconds:0.###} s and {Failures} failures.", EventName = "SourceRecovered")]
        public static partial void SourceRecovered(ILogger logger, string service, string source, double seconds, int failures);

        [LoggerMessage(5, LogLevel.Error, "A subscriber to service {Service} from source {Source} threw.", EventName = "SubscriberFailed")]
        public static partial void SubscriberFailed(ILogger logger, string service, string source, Exception exception);
    }
}
