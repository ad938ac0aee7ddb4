namespace Lodestar.Health;

/// <summary>
/// One ejection of an endpoint by outlier detection: why, since when and until when. Immutable; an endpoint's current
/// ejection is <see cref="LoadBalancing.EndpointState.Ejection"/>.
/// </summary>
public sealed class EndpointEjection
{
    internal EndpointEjection(string reason, DateTimeOffset since, TimeSpan duration, int count, long sinceTimestamp)
    {
        Reason = reason;
        Since = since;
        Until = since + duration;
        Duration = duration;
        Count = count;
        SinceTimestamp = sinceTimestamp;
    }

    /// <summary>Gets why the endpoint was ejected: one of <see cref="EjectionReasons"/>.</summary>
    public string Reason { get; }

    /// <summary>Gets when the endpoint was ejected (the health stage's <see cref="TimeProvider"/> clock).</summary>
    public DateTimeOffset Since { get; }

    /// <summary>
    /// Gets when the ejection ends. The endpoint returns at the first outlier-detection interval at or after this
    /// time, as in Envoy, so it may stay out up to one <see cref="OutlierDetectionOptions.Interval"/> longer.
    /// </summary>
    public DateTimeOffset Until { get; }

    /// <summary>Gets how long this ejection lasts: <see cref="OutlierDetectionOptions.BaseEjectionTime"/> × <see cref="Count"/>, capped.</summary>
    public TimeSpan Duration { get; }

    /// <summary>
    /// Gets the ejection multiplier: 1 for a first ejection, growing by one with each ejection that follows closely
    /// and shrinking by one for each interval the endpoint stays in (Envoy's semantics).
    /// </summary>
    public int Count { get; }

    /// <summary>Gets the time left until <see cref="Until"/> at <paramref name="now"/>, or zero when it has passed.</summary>
    /// <param name="now">The current time, for example <c>TimeProvider.GetUtcNow()</c>.</param>
    /// <returns>The time left, never negative.</returns>
    public TimeSpan GetTimeLeft(DateTimeOffset now) => Until > now ? Until - now : TimeSpan.Zero;

    internal long SinceTimestamp { get; }
}
