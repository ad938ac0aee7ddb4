namespace Lodestar.Cli.Demo;

/// <summary>What <c>lodestar demo</c> runs.</summary>
internal sealed record DemoOptions
{
    public string Policy { get; init; } = Lodestar.LoadBalancing.LoadBalancingPolicies.RoundRobin;

    public int Instances { get; init; } = 5;

    public TimeSpan Duration { get; init; } = TimeSpan.FromSeconds(30);

    public int Rps { get; init; } = 200;

    public int Concurrency { get; init; } = 16;

    public bool Http2 { get; init; }

    /// <summary>Gets a value indicating whether the load is unary gRPC calls through a <c>lodestar:///</c> channel and a Lodestar gRPC balancer (HTTP/2).</summary>
    public bool Grpc { get; init; }

    public bool Json { get; init; }

    /// <summary>Gets the port of the demo's /metrics endpoint on 127.0.0.1: 0 for an ephemeral one, null for none.</summary>
    public int? MetricsPort { get; init; }

    /// <summary>Gets the port of the demo's admin page (<c>/lodestar</c>) on 127.0.0.1: 0 for an ephemeral one, null for none.</summary>
    public int? AdminPort { get; init; }

    /// <summary>Gets the cap on requests: the rate times the duration.</summary>
    public long MaxRequests => (long)(Rps * Duration.TotalSeconds);
}
