using Lodestar.Diagnostics.Internal;
using Lodestar.Health.Internal;

namespace Lodestar.LoadBalancing;

/// <summary>
/// One attempt on an endpoint picked by <see cref="BalancedService.TryPick"/>: <see cref="Start"/> it when it is sent,
/// then <see cref="Complete(EndpointOutcome)"/> it exactly once. A struct, so an attempt costs no allocation; copies
/// share nothing, so keep the started value and complete that one.
/// </summary>
/// <remarks>
/// Starting counts the attempt in flight on the endpoint (least-request and peak-EWMA read it); completing ends that
/// count, records the latency (peak-EWMA, metrics) and feeds the outcome to outlier detection and the circuit breaker,
/// as the <see cref="HttpClient"/> handler does for each of its attempts.
/// </remarks>
public readonly struct EndpointAttempt
{
    private readonly HealthStage? _stage;
    private readonly LodestarMetrics? _metrics;
    private readonly long _ticket;
    private readonly long _started;
    private readonly bool _countedLoad;

    internal EndpointAttempt(EndpointState endpoint, HealthStage stage, LodestarMetrics metrics, long ticket, long started, bool countedLoad)
    {
        Endpoint = endpoint;
        _stage = stage;
        _metrics = metrics;
        _ticket = ticket;
        _started = started;
        _countedLoad = countedLoad;
    }

    /// <summary>Gets the endpoint the attempt goes to; <see langword="null"/> for a default instance.</summary>
    public EndpointState? Endpoint { get; }

    /// <summary>Gets whether <see cref="Start"/> produced this value.</summary>
    public bool IsStarted => _started != 0;

    /// <summary>Gets the time since <see cref="Start"/>; zero for an attempt not started.</summary>
    public TimeSpan Elapsed => IsStarted ? _stage!.TimeProvider.GetElapsedTime(_started) : TimeSpan.Zero;

    /// <summary>Counts the attempt in flight on its endpoint and starts its clock.</summary>
    /// <returns>The started attempt, to complete later.</returns>
    /// <exception cref="InvalidOperationException">The attempt is a default instance or already started.</exception>
    public EndpointAttempt Start()
    {
        var endpoint = Endpoint;
        if (endpoint is null || _stage is null || IsStarted)
        {
            throw new InvalidOperationException(endpoint is null ? "The attempt has no endpoint: it was not produced by BalancedService.TryPick." : "The attempt is already started.");
        }

        var countedLoad = endpoint.OnRequestStarted();
        var started = Math.Max(1, _stage.TimeProvider.GetTimestamp());
        return new EndpointAttempt(endpoint, _stage, _metrics!, _ticket, started, countedLoad);
    }

    /// <summary>Ends a started attempt with its latency measured from <see cref="Start"/> to now.</summary>
    /// <param name="outcome">How the attempt ended.</param>
    /// <returns>The latency recorded.</returns>
    /// <exception cref="InvalidOperationException">The attempt was not started.</exception>
    public TimeSpan Complete(EndpointOutcome outcome)
    {
        ThrowIfNotStarted();
        var latency = _stage!.TimeProvider.GetElapsedTime(_started);
        Complete(outcome, latency);
        return latency;
    }

    /// <summary>
    /// Ends a started attempt with a latency the caller measured (for example to response headers, for a stream that
    /// ended long after).
    /// </summary>
    /// <param name="outcome">How the attempt ended.</param>
    /// <param name="latency">The latency to record.</param>
    /// <exception cref="InvalidOperationException">The attempt was not started.</exception>
    public void Complete(EndpointOutcome outcome, TimeSpan latency)
    {
        ThrowIfNotStarted();
        var endpoint = Endpoint!;
        var stage = _stage!;
        if (outcome == EndpointOutcome.Abandoned)
        {
            // No verdict, and the latency is only a lower bound: the same as an HTTP attempt a hedge beat.
            endpoint.OnRequestAbandoned(latency, _countedLoad);
            HealthStage.OnAttemptAbandoned(endpoint, _ticket);
        }
        else
        {
            endpoint.OnRequestCompleted(outcome == EndpointOutcome.Success, latency, _countedLoad);
            stage.OnAttemptCompleted(endpoint, _ticket, outcome switch
            {
                EndpointOutcome.Success => AttemptOutcome.Success,
                EndpointOutcome.ServerError => AttemptOutcome.ServerError,
                EndpointOutcome.ConnectFailure => AttemptOutcome.ConnectFailure,
                _ => AttemptOutcome.GatewayFailure,
            });
        }

        _metrics!.RecordAttempt(stage.ServiceName, endpoint.Endpoint, outcome switch
        {
            EndpointOutcome.Success => "success",
            EndpointOutcome.ServerError or EndpointOutcome.GatewayFailure => "server_error",
            EndpointOutcome.ConnectFailure => "connect_failure",
            _ => "abandoned",
        }, latency.TotalSeconds);
    }

    /// <summary>Gives up an attempt that was picked but never sent: returns a half-open breaker's probe slot.</summary>
    /// <remarks>A started attempt is ended as <see cref="EndpointOutcome.Abandoned"/> instead.</remarks>
    public void Cancel()
    {
        if (IsStarted)
        {
            Complete(EndpointOutcome.Abandoned);
        }
        else if (Endpoint is { } endpoint)
        {
            HealthStage.OnAttemptAbandoned(endpoint, _ticket);
        }
    }

    private void ThrowIfNotStarted()
    {
        if (!IsStarted)
        {
            throw new InvalidOperationException("The attempt was not started: call Start() and complete the value it returns.");
        }
    }
}
