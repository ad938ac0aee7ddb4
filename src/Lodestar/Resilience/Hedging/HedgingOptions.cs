namespace Lodestar.Resilience.Hedging;

/// <summary>
/// Hedging: when an idempotent request has no response after a delay, a second attempt goes to another endpoint; the
/// first success wins and the others are cancelled. Off by default; it trades extra load for lower tail latency.
/// </summary>
/// <remarks>
/// Hedged attempts count against the retry budget. Only idempotent requests (or requests opted in with
/// <see cref="LodestarRequestOptions.AllowRetries"/>) whose body can be replayed are hedged.
/// </remarks>
public sealed class HedgingOptions
{
    /// <summary>Gets or sets whether hedging is on. Default <see langword="false"/>.</summary>
    public bool Enabled { get; set; }

    /// <summary>
    /// Gets or sets the delay before a hedged attempt when <see cref="DelayPercentile"/> is not set, or until enough
    /// latencies have been seen to estimate it. Default 100 ms; range 0 to 1 minute.
    /// </summary>
    public TimeSpan Delay { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// Gets or sets a latency percentile (for example 0.95) of the service's recent successful attempts to use as the
    /// delay, or <see langword="null"/> (default) for the fixed <see cref="Delay"/>. Range above 0 to below 1.
    /// </summary>
    public double? DelayPercentile { get; set; }

    /// <summary>Gets or sets how many hedged attempts may be added to the first. Default 1; range 1 to 5.</summary>
    public int MaxHedgedAttempts { get; set; } = 1;

    /// <summary>
    /// Gets or sets the largest share of the service's requests that may send a hedge, over the retry budget's window
    /// (for example 0.02 with a <see cref="DelayPercentile"/> of 0.98), or <see langword="null"/> (default) for no limit
    /// but the retry budget's. A hedge beyond it is not sent; attempts that replace failed ones are not limited by it.
    /// Range above 0 to 1.
    /// </summary>
    /// <remarks>
    /// A percentile delay hedges about its complement of requests while latencies hold still, and more while they grow
    /// faster than the estimate follows (a load spike): this bounds the extra load hedging adds, as Finagle's backup
    /// requests bound theirs.
    /// </remarks>
    public double? MaxHedgeRatio { get; set; }

    /// <summary>
    /// Gets or sets whether a request's first hedge is left unsent when, as its delay passes, the process's thread pool has
    /// work waiting for a thread. Default <see langword="true"/>; the request then waits for its first attempt, as an
    /// unhedged one does.
    /// </summary>
    /// <remarks>
    /// Work waiting for a thread means the process itself is the bottleneck: the first attempt's answer may have arrived
    /// and be waiting its turn, and a hedge would queue behind the same work, adding load where there is none to spare.
    /// Skipped hedges are counted in <c>lodestar.client.hedges.skipped</c>. Set to <see langword="false"/> to hedge
    /// whenever the delay passes (within the retry budget and <see cref="MaxHedgeRatio"/>).
    /// </remarks>
    public bool SkipWhenThreadPoolBusy { get; set; } = true;
}
