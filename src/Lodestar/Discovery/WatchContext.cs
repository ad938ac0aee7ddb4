using Lodestar.Endpoints;

namespace Lodestar.Discovery;

/// <summary>
/// What a <see cref="ListWatchEndpointSource{TCursor}"/> reports through while it lists and watches: complete endpoint
/// snapshots, problems that do not end the watch, and progress (the cursor to resume from).
/// </summary>
/// <typeparam name="TCursor">Where a watch resumes: a resourceVersion, a revision, an index, a TTL.</typeparam>
/// <remarks>
/// Calls are made from the source's own loop, one at a time; the context is not thread-safe. Every call counts as
/// progress: it re-arms the stall detector (<see cref="ListWatchEndpointSource{TCursor}.StallTimeout"/>) and tells the
/// loop that the current watch was useful.
/// </remarks>
public sealed class WatchContext<TCursor>
{
    private readonly IEndpointObserver _observer;
    private readonly Internal.IReconnectObserver? _loopObserver;
    private CancellationTokenSource? _stall;
    private TimeSpan _stallTimeout;
    private TCursor? _cursor;

    internal WatchContext(string serviceName, IEndpointObserver observer, Internal.IReconnectObserver? loopObserver = null)
    {
        ServiceName = serviceName;
        _observer = observer;
        _loopObserver = loopObserver;
    }

    /// <summary>Gets the service being followed.</summary>
    public string ServiceName { get; }

    /// <summary>Gets whether a list has produced a cursor to watch from.</summary>
    public bool HasCursor { get; private set; }

    /// <summary>Gets the cursor to resume from: the last one passed to <see cref="Advance"/> or returned by a list.</summary>
    public TCursor? Cursor => _cursor;

    /// <summary>Gets whether anything was published, advanced or kept alive since the current list or watch started.</summary>
    public bool MadeProgress { get; private set; }

    /// <summary>Gets whether a snapshot has been published since the loop started.</summary>
    public bool HasPublished { get; private set; }

    /// <summary>Publishes the complete current set of routable endpoints (see <see cref="IEndpointObserver.OnEndpoints"/>).</summary>
    /// <param name="endpoints">Every routable endpoint now; the observer takes its own copy.</param>
    public void Publish(IReadOnlyList<DiscoveredEndpoint> endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        HasPublished = true;
        Progress();
        _observer.OnEndpoints(endpoints);
    }

    /// <summary>
    /// Reports a problem that does not end the watch (a malformed entry that was skipped, an event that could not be
    /// read); the last published set stays in force.
    /// </summary>
    /// <param name="error">What went wrong; its message names the registry and the item, and holds no secret.</param>
    public void ReportError(Exception error)
    {
        ArgumentNullException.ThrowIfNull(error);
        _observer.OnError(error);
    }

    /// <summary>Records that the registry has been read up to <paramref name="cursor"/>: a later watch resumes from there.</summary>
    /// <param name="cursor">The position to resume from.</param>
    public void Advance(TCursor cursor)
    {
        _cursor = cursor;
        HasCursor = true;
        Progress();
    }

    /// <summary>Records that the stream is alive (a bookmark, a progress notification, a keep-alive) without moving the cursor.</summary>
    public void KeepAlive() => Progress();

    internal void BeginStep(CancellationTokenSource? stall, TimeSpan stallTimeout)
    {
        MadeProgress = false;
        _stall = stall;
        _stallTimeout = stallTimeout;
    }

    internal void EndStep() => _stall = null;

    internal void ForgetCursor()
    {
        _cursor = default;
        HasCursor = false;
    }

    private void Progress()
    {
        MadeProgress = true;
        _loopObserver?.OnProgress();
        if (_stall is { IsCancellationRequested: false } stall)
        {
            // Re-arms the timer created through the source's TimeProvider.
            stall.CancelAfter(_stallTimeout);
        }
    }
}
