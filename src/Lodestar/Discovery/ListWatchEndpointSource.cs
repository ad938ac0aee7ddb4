using System.Diagnostics;
using Lodestar.Discovery.Internal;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Lodestar.Discovery;

/// <summary>
/// The one discovery loop every Lodestar source runs: list the registry, then watch it from the list's cursor, resume
/// from the last cursor when a stream ends, list again when the cursor expires, and back off with jitter between
/// failures, reporting every failure beside the last good endpoint set.
/// </summary>
/// <typeparam name="TCursor">Where a watch resumes: a resourceVersion, a revision, a blocking-query index, a TTL.</typeparam>
/// <remarks>
/// <para>
/// This is client-go's reflector (<c>ListAndWatch</c> inside one <c>BackoffUntil</c>) and grpc-dotnet's
/// <c>PollingResolver</c> in one shape. A source says only how to list (<see cref="ListAsync"/>), how to watch from a
/// cursor (<see cref="WatchAsync"/>) and what "start over" means (by returning <see cref="WatchOutcome.Relist"/>); the
/// base owns the loop, cancellation, error reporting, the backoff and its reset rule (<see cref="BackoffOptions"/>),
/// stall detection, logging and the <c>lodestar.discovery.reconnects</c> metric.
/// </para>
/// <para>
/// Rules of the loop: a failure (an exception from <see cref="ListAsync"/> or <see cref="WatchAsync"/>) is reported
/// through <see cref="IEndpointObserver.OnError"/> after <see cref="DescribeError"/>, then the loop waits the next
/// backoff delay and retries the step that failed: the list when there is no cursor yet, otherwise the watch from the
/// last cursor. Every retry after a failure, every <see cref="WatchOutcome.Reconnect"/> and every
/// <see cref="WatchOutcome.Relist"/> counts as one reconnect. The last published set stays in force throughout.
/// </para>
/// </remarks>
public abstract partial class ListWatchEndpointSource<TCursor> : IEndpointSource
{
    /// <summary>A watch that ends within this time without progress counts as a failure (client-go's "very short watch").</summary>
    private static readonly TimeSpan s_shortWatch = TimeSpan.FromSeconds(1);

    private readonly BackoffOptions _backoff;
    private readonly Func<double>? _random;

    /// <summary>Initializes the loop's settings.</summary>
    /// <param name="serviceName">The service the source follows.</param>
    /// <param name="backoff">The delays between failures; copied.</param>
    /// <param name="timeProvider">The clock for delays, the backoff reset rule and stall detection.</param>
    /// <param name="logger">The source's logger, or <see langword="null"/>.</param>
    /// <param name="random">Numbers in [0, 1) for the backoff jitter, or <see langword="null"/> for <see cref="Random.Shared"/>.</param>
    protected ListWatchEndpointSource(string serviceName, BackoffOptions backoff, TimeProvider timeProvider, ILogger? logger, Func<double>? random = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(serviceName);
        ArgumentNullException.ThrowIfNull(backoff);
        ArgumentNullException.ThrowIfNull(timeProvider);
        if (backoff.Validate("Backoff") is { } problem)
        {
            throw new ArgumentException(problem, nameof(backoff));
        }

        ServiceName = serviceName;
        _backoff = new BackoffOptions();
        _backoff.CopyFrom(backoff);
        TimeProvider = timeProvider;
        Logger = logger ?? NullLogger.Instance;
        _random = random;
    }

    /// <summary>Gets the service the source follows.</summary>
    public string ServiceName { get; }

    /// <summary>Gets the clock of the loop.</summary>
    protected TimeProvider TimeProvider { get; }

    /// <summary>Gets the source's logger.</summary>
    protected ILogger Logger { get; }

    /// <summary>
    /// Gets how long a watch may go without any progress (<see cref="WatchContext{TCursor}.Publish"/>,
    /// <see cref="WatchContext{TCursor}.Advance"/>, <see cref="WatchContext{TCursor}.KeepAlive"/>) before the loop
    /// ends it as stalled and resumes from the last cursor, or <see langword="null"/> (default) to trust the stream.
    /// </summary>
    /// <remarks>Set it from what the protocol guarantees: bookmarks, progress notifications, a blocking query's wait plus a margin.</remarks>
    protected virtual TimeSpan? StallTimeout => null;

    /// <summary>Runs the loop until <paramref name="cancellationToken"/> is cancelled. Never throws but for that cancellation.</summary>
    /// <param name="observer">Receives snapshots and errors.</param>
    /// <param name="cancellationToken">Stops the loop.</param>
    /// <returns>A task that completes when the loop has stopped.</returns>
    public async Task RunAsync(IEndpointObserver observer, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(observer);
        var reconnects = observer as IReconnectObserver;
        var context = new WatchContext<TCursor>(ServiceName, observer, reconnects);
        var backoff = new Backoff(_backoff, TimeProvider, _random);
        var listNext = true;
        var reconnecting = false;
        while (!cancellationToken.IsCancellationRequested)
        {
            if (reconnecting)
            {
                reconnects?.OnReconnect();
                reconnecting = false;
            }

            var stallTimeout = StallTimeout;
            CancellationTokenSource? stall = null;
            CancellationTokenSource? linked = null;
            var started = TimeProvider.GetTimestamp();
            var watching = !listNext && context.HasCursor;
            try
            {
                var token = cancellationToken;
                if (watching && stallTimeout is { } timeout && timeout > TimeSpan.Zero)
                {
                    stall = new CancellationTokenSource(timeout, TimeProvider);
                    linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, stall.Token);
                    token = linked.Token;
                }

                context.BeginStep(stall, stallTimeout ?? Timeout.InfiniteTimeSpan);
                if (!watching)
                {
                    Log.Listing(Logger, ServiceName);
                    var cursor = await ListAsync(context, token).ConfigureAwait(false);
                    context.Advance(cursor);
                    listNext = false;
                    continue;
                }

                Log.Watching(Logger, ServiceName);
                var outcome = await WatchAsync(context.Cursor!, context, token).ConfigureAwait(false);
                var fruitless = !context.MadeProgress && TimeProvider.GetElapsedTime(started) < s_shortWatch;
                switch (outcome)
                {
                    case WatchOutcome.Continue:
                        continue;
                    case WatchOutcome.Refresh:
                        listNext = true;
                        continue;
                    case WatchOutcome.Relist:
                        Log.Relisting(Logger, ServiceName);
                        listNext = true;
                        context.ForgetCursor();
                        break;
                    default:
                        Log.StreamEnded(Logger, ServiceName);
                        break;
                }

                reconnecting = true;
                if (fruitless)
                {
                    // The registry ends watches at once (or keeps expiring cursors): do not spin on it.
                    var delay = backoff.NextDelay();
                    Log.ShortWatch(Logger, ServiceName, delay.TotalMilliseconds);
                    await Task.Delay(delay, TimeProvider, cancellationToken).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (OperationCanceledException) when (stall is { IsCancellationRequested: true })
            {
                // The stream went silent for longer than the protocol allows: resume from the last cursor.
                Log.Stalled(Logger, ServiceName, stallTimeout!.Value.TotalSeconds);
                reconnecting = true;
                Report(observer, reconnects, new TimeoutException(
                    $"The watch of service '{ServiceName}' sent nothing for {stallTimeout.Value.TotalSeconds:0.###} s; resuming from its last position."));
            }
            catch (Exception ex)
            {
                var delay = backoff.NextDelay();

                // Only the described error is logged: the raw one may quote what the registry sent, secrets and all.
                var described = Describe(ex);
                Log.Failed(Logger, ServiceName, backoff.Failures, delay.TotalMilliseconds, described);
                Deliver(observer, reconnects, described);
                reconnecting = true;
                try
                {
                    await Task.Delay(delay, TimeProvider, cancellationToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
            finally
            {
                context.EndStep();
                linked?.Dispose();
                stall?.Dispose();
            }
        }
    }

    /// <summary>
    /// Reads the complete current state of the service, publishes it through <paramref name="context"/> and returns the
    /// cursor to watch from. Throw to report a failure; the loop backs off and lists again.
    /// </summary>
    /// <param name="context">Publishes the snapshot and reports skipped entries.</param>
    /// <param name="cancellationToken">Ends the list.</param>
    /// <returns>The cursor the first watch starts from.</returns>
    protected abstract Task<TCursor> ListAsync(WatchContext<TCursor> context, CancellationToken cancellationToken);

    /// <summary>
    /// Watches the service from <paramref name="cursor"/>, publishing each change and advancing the cursor as events
    /// arrive, until the stream ends. Throw to report a failure; the loop backs off and resumes from the last cursor.
    /// </summary>
    /// <param name="cursor">The position to resume from.</param>
    /// <param name="context">Publishes snapshots, reports problems and records progress.</param>
    /// <param name="cancellationToken">Ends the watch: the loop stops, or the stream stalled.</param>
    /// <returns>How the watch ended, which says what the loop does next.</returns>
    protected abstract Task<WatchOutcome> WatchAsync(TCursor cursor, WatchContext<TCursor> context, CancellationToken cancellationToken);

    /// <summary>
    /// Turns a failure into the error the observer receives: it should name the registry and the service, and must not
    /// contain secrets. The default returns <paramref name="error"/> unchanged.
    /// </summary>
    /// <param name="error">What <see cref="ListAsync"/> or <see cref="WatchAsync"/> threw.</param>
    /// <returns>The error to report.</returns>
    protected virtual Exception DescribeError(Exception error) => error;

    private void Report(IEndpointObserver observer, IReconnectObserver? loopObserver, Exception error) => Deliver(observer, loopObserver, Describe(error));

    private static void Deliver(IEndpointObserver observer, IReconnectObserver? loopObserver, Exception described)
    {
        if (loopObserver is not null)
        {
            // The watcher tells a failing registry (logged once, then at most once a minute) from a skipped entry.
            loopObserver.OnFailure(described);
        }
        else
        {
            observer.OnError(described);
        }
    }

    private Exception Describe(Exception error)
    {
        try
        {
            return DescribeError(error) ?? error;
        }
        catch (Exception ex)
        {
            Debug.Fail("DescribeError threw: " + ex.Message);
            return error;
        }
    }

    private static partial class Log
    {
        [LoggerMessage(900, LogLevel.Debug, "Listing service {Service}.", EventName = "DiscoveryListing")]
        public static partial void Listing(ILogger logger, string service);

        [LoggerMessage(901, LogLevel.Debug, "Watching service {Service}.", EventName = "DiscoveryWatching")]
        public static partial void Watching(ILogger logger, string service);

        [LoggerMessage(902, LogLevel.Debug, "The watch of service {Service} ended; resuming from its last position.", EventName = "DiscoveryStreamEnded")]
        public static partial void StreamEnded(ILogger logger, string service);

        [LoggerMessage(903, LogLevel.Information, "The position of service {Service} can no longer be resumed from; listing again.", EventName = "DiscoveryRelisting")]
        public static partial void Relisting(ILogger logger, string service);

        [LoggerMessage(904, LogLevel.Debug, "The watch of service {Service} ended at once without progress; waiting {DelayMs:0} ms.", EventName = "DiscoveryShortWatch")]
        public static partial void ShortWatch(ILogger logger, string service, double delayMs);

        [LoggerMessage(905, LogLevel.Information, "The watch of service {Service} sent nothing for {Seconds:0.###} s; resuming from its last position.", EventName = "DiscoveryStalled")]
        public static partial void Stalled(ILogger logger, string service, double seconds);

        [LoggerMessage(906, LogLevel.Debug, "Following service {Service} failed ({Failures} in a row); retrying in {DelayMs:0} ms.", EventName = "DiscoveryFailed")]
        public static partial void Failed(ILogger logger, string service, int failures, double delayMs, Exception exception);
    }
}
