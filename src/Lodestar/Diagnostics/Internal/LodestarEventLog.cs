using System.Collections.Concurrent;
using Lodestar.Discovery;

namespace Lodestar.Diagnostics.Internal;

/// <summary>
/// The bounded ring of recent <see cref="LodestarEvent"/>s that <see cref="ILodestarInspector"/> reports. Appends come
/// from where endpoint sets, ejections, breaker transitions and source errors already happen, never from a pick.
/// </summary>
/// <remarks>
/// Appends take a short lock over a fixed array (no growth), so a burst cannot use more than <see cref="Capacity"/>
/// events of memory. Retry-budget exhaustion happens on the request path during an outage; it is recorded at most once
/// per service per second and the check before the lock is one dictionary read.
/// </remarks>
internal sealed class LodestarEventLog
{
    /// <summary>The number of events kept.</summary>
    public const int Capacity = 256;

    private static readonly TimeSpan s_budgetEventSpacing = TimeSpan.FromSeconds(1);

    private readonly TimeProvider _timeProvider;
    private readonly Lock _gate = new();
    private readonly LodestarEvent?[] _ring = new LodestarEvent?[Capacity];
    private readonly ConcurrentDictionary<string, long> _lastBudgetEvent = new(StringComparer.Ordinal);
    private int _next;

    public LodestarEventLog(TimeProvider timeProvider)
    {
        _timeProvider = timeProvider;
    }

    /// <summary>Records an event now; <paramref name="detail"/> is redacted of recognisable credentials.</summary>
    public void Append(LodestarEventKind kind, string service, string? source = null, string? endpoint = null, string? detail = null)
    {
        var entry = new LodestarEvent
        {
            Timestamp = _timeProvider.GetUtcNow(),
            Kind = kind,
            Service = service,
            Source = source,
            Endpoint = endpoint,
            Detail = SecretRedactor.Default.Redact(detail),
        };
        lock (_gate)
        {
            _ring[_next] = entry;
            _next = (_next + 1) % Capacity;
        }
    }

    /// <summary>Records that a retry was refused by the retry budget, at most once per service per second.</summary>
    public void AppendRetryBudgetExhausted(string service)
    {
        var now = _timeProvider.GetTimestamp();
        if (_lastBudgetEvent.TryGetValue(service, out var last) && _timeProvider.GetElapsedTime(last, now) < s_budgetEventSpacing)
        {
            return;
        }

        // Two threads may both pass the check above; the second event a second apart is harmless.
        _lastBudgetEvent[service] = now;
        Append(LodestarEventKind.RetryBudgetExhausted, service, detail: "a retry was not made: the service's retry budget is spent");
    }

    /// <summary>Gets the events kept, oldest first.</summary>
    public LodestarEvent[] Read()
    {
        var result = new List<LodestarEvent>(Capacity);
        lock (_gate)
        {
            for (var i = 0; i < Capacity; i++)
            {
                if (_ring[(_next + i) % Capacity] is { } entry)
                {
                    result.Add(entry);
                }
            }
        }

        return [.. result];
    }
}
