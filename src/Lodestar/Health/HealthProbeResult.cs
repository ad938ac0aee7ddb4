namespace Lodestar.Health;

/// <summary>The outcome of one <see cref="HealthProbe"/> call: healthy, or unhealthy with a reason. Immutable.</summary>
public sealed class HealthProbeResult
{
    private HealthProbeResult(bool isHealthy, string? reason)
    {
        IsHealthy = isHealthy;
        Reason = reason;
    }

    /// <summary>Gets the result of a passed check (one shared instance: a passing probe allocates no result).</summary>
    public static HealthProbeResult Healthy { get; } = new(isHealthy: true, reason: null);

    /// <summary>Gets whether the endpoint passed.</summary>
    public bool IsHealthy { get; }

    /// <summary>Gets why the endpoint failed (for example <c>status 503</c> or <c>NOT_SERVING</c>); <see langword="null"/> when it passed.</summary>
    public string? Reason { get; }

    /// <summary>Creates the result of a failed check.</summary>
    /// <param name="reason">Why the endpoint failed, for logs; it must not contain secrets.</param>
    /// <returns>The result.</returns>
    /// <exception cref="ArgumentException"><paramref name="reason"/> is <see langword="null"/> or empty.</exception>
    public static HealthProbeResult Unhealthy(string reason)
    {
        ArgumentException.ThrowIfNullOrEmpty(reason);
        return new HealthProbeResult(isHealthy: false, reason);
    }
}
