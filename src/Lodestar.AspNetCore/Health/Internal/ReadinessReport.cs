using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Lodestar.AspNetCore.Health.Internal;

/// <summary>The outcome of one readiness evaluation: overall status, whether draining, and each check's result.</summary>
internal sealed class ReadinessReport
{
    public static readonly ReadinessReport Draining = new(HealthStatus.Unhealthy, draining: true, [], 0);

    public ReadinessReport(HealthStatus status, bool draining, IReadOnlyList<ReadinessEntry> entries, long timestamp)
    {
        Status = status;
        IsDraining = draining;
        Entries = entries;
        Timestamp = timestamp;
    }

    public HealthStatus Status { get; }

    public bool IsDraining { get; }

    /// <summary>Gets whether the instance should take traffic: not draining, and every check healthy or degraded.</summary>
    public bool IsReady => !IsDraining && Status != HealthStatus.Unhealthy;

    public IReadOnlyList<ReadinessEntry> Entries { get; }

    /// <summary>Gets the <see cref="TimeProvider"/> timestamp at which the evaluation finished.</summary>
    public long Timestamp { get; }
}

/// <summary>One check's result in a <see cref="ReadinessReport"/>.</summary>
internal sealed record ReadinessEntry(string Name, HealthStatus Status, TimeSpan Duration, string? Description);
