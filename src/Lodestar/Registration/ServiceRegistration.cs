namespace Lodestar.Registration;

/// <summary>What an instance announces about itself to a registry.</summary>
public sealed class ServiceRegistration
{
    /// <summary>Gets or sets the logical service name, for example <c>orders</c>.</summary>
    public required string ServiceName { get; init; }

    /// <summary>Gets or sets the instance ID, unique per instance; defaults to <c>{service}-{host}-{port}</c> when empty.</summary>
    public string? InstanceId { get; init; }

    /// <summary>Gets or sets the address other services should connect to (IP or DNS name).</summary>
    public required string Host { get; init; }

    /// <summary>Gets or sets the port other services should connect to.</summary>
    public required int Port { get; init; }

    /// <summary>Gets or sets the scheme served, <c>http</c> (default) or <c>https</c>.</summary>
    public string Scheme { get; init; } = "http";

    /// <summary>Gets or sets tags (Consul tags); empty by default.</summary>
    public IReadOnlyList<string> Tags { get; init; } = [];

    /// <summary>Gets or sets metadata published with the instance; empty by default.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; init; } = new Dictionary<string, string>();

    /// <summary>
    /// Gets or sets the time to live of the registration when heartbeats stop (Consul TTL check, etcd lease).
    /// Default 15 seconds.
    /// </summary>
    public TimeSpan Ttl { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>Gets or sets the HTTP health-check path a registry may call (Consul HTTP check), or <see langword="null"/> for a TTL check.</summary>
    public string? HealthCheckPath { get; init; }

    /// <summary>Gets the effective instance ID.</summary>
    public string EffectiveInstanceId => string.IsNullOrEmpty(InstanceId) ? $"{ServiceName}-{Host}-{Port}" : InstanceId;
}
