using System.Collections.Concurrent;

namespace Lodestar.Cli.Demo;

/// <summary>Outcome and latency of every demo request, per endpoint address. Not on Lodestar's pick path.</summary>
internal sealed class DemoStats
{
    private readonly ConcurrentDictionary<string, EndpointStats> _endpoints = new(StringComparer.Ordinal);
    private readonly List<double> _latencies = new(capacity: 16_384);
    private long _requests;
    private long _failed;
    private long _retried;

    public long Requests => Interlocked.Read(ref _requests);

    public long Failed => Interlocked.Read(ref _failed);

    public long Retried => Interlocked.Read(ref _retried);

    public IEnumerable<EndpointStats> Endpoints => _endpoints.Values;

    public void AddRetry() => Interlocked.Increment(ref _retried);

    public void Record(string address, double latencyMs, bool ok)
    {
        Interlocked.Increment(ref _requests);
        if (!ok)
        {
            Interlocked.Increment(ref _failed);
        }

        _endpoints.GetOrAdd(address, static a => new EndpointStats(a)).Record(latencyMs, ok);
        lock (_latencies)
        {
            _latencies.Add(latencyMs);
        }
    }

    public double[] SortedLatencies()
    {
        double[] copy;
        lock (_latencies)
        {
            copy = _latencies.ToArray();
        }

        Array.Sort(copy);
        return copy;
    }

    public static double Percentile(double[] sorted, double p)
        => sorted.Length == 0 ? 0 : sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Length) - 1, 0, sorted.Length - 1)];
}

internal sealed class EndpointStats(string address)
{
    private readonly List<double> _latencies = [];
    private long _requests;
    private long _failed;

    public string Address { get; } = address;

    public long Requests => Interlocked.Read(ref _requests);

    public long Failed => Interlocked.Read(ref _failed);

    public void Record(double latencyMs, bool ok)
    {
        Interlocked.Increment(ref _requests);
        if (!ok)
        {
            Interlocked.Increment(ref _failed);
        }

        lock (_latencies)
        {
            _latencies.Add(latencyMs);
        }
    }

    public double[] SortedLatencies()
    {
        double[] copy;
        lock (_latencies)
        {
            copy = _latencies.ToArray();
        }

        Array.Sort(copy);
        return copy;
    }
}
