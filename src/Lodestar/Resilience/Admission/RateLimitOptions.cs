namespace Lodestar.Resilience.Admission;

/// <summary>
/// A client-side token bucket per service and client, with the semantics of System.Threading.RateLimiting's
/// <c>TokenBucketRateLimiter</c> (no queue): each request takes a token; when none is left the request fails at once
/// with a <see cref="RateLimitedException"/>. Off by default.
/// </summary>
public sealed class RateLimitOptions
{
    /// <summary>Gets or sets whether the limiter is on. Default <see langword="false"/>.</summary>
    public bool Enabled { get; set; }

    /// <summary>Gets or sets the bucket size: the largest burst. Default 100; range 1 to 10,000,000.</summary>
    public int TokenLimit { get; set; } = 100;

    /// <summary>Gets or sets the tokens added every <see cref="ReplenishmentPeriod"/>. Default 10; range 1 to 10,000,000.</summary>
    public int TokensPerPeriod { get; set; } = 10;

    /// <summary>Gets or sets how often tokens are added. Default 100 ms (so the default sustains 100 requests/s); range 1 ms to 1 hour.</summary>
    public TimeSpan ReplenishmentPeriod { get; set; } = TimeSpan.FromMilliseconds(100);
}
