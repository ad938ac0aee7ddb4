namespace Lodestar.AspNetCore.Registration;

/// <summary>
/// What this instance registers in every registry with an <see cref="Lodestar.Registration.IServiceRegistrar"/> in the
/// container, once the server listens; set through <c>AddLodestarRegistration</c>.
/// </summary>
public sealed class LodestarRegistrationOptions
{
    /// <summary>Gets or sets the logical service name to register, for example <c>orders</c>. Required.</summary>
    public string ServiceName { get; set; } = "";

    /// <summary>
    /// Gets or sets the instance ID, unique per instance, or <see langword="null"/> (default) for
    /// <c>{service}-{address}-{port}</c>.
    /// </summary>
    public string? InstanceId { get; set; }

    /// <summary>
    /// Gets or sets the address other services should connect to (IP or DNS name), or <see langword="null"/> (default) to
    /// use, in order: the <c>POD_IP</c> setting (environment variable or configuration key, as the Kubernetes downward
    /// API provides it), the address the server is bound to, and for a wildcard binding (<c>0.0.0.0</c>, <c>[::]</c>,
    /// <c>*</c>, <c>+</c>) the first up, non-loopback unicast IPv4 address of the machine. A wildcard is never advertised.
    /// </summary>
    public string? AdvertiseAddress { get; set; }

    /// <summary>Gets or sets the port to advertise, or <see langword="null"/> (default) for the port the server is bound to.</summary>
    public int? AdvertisePort { get; set; }

    /// <summary>
    /// Gets or sets the scheme of the binding to advertise, <c>http</c> or <c>https</c>, or <see langword="null"/>
    /// (default) for the first binding, preferring <c>http</c>.
    /// </summary>
    public string? Scheme { get; set; }

    /// <summary>Gets the tags to register (Consul tags); empty by default.</summary>
    public IList<string> Tags { get; } = new List<string>();

    /// <summary>Gets the metadata to register; empty by default.</summary>
    public IDictionary<string, string> Metadata { get; } = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary>Gets or sets the registration's time to live when heartbeats stop. Default 15 seconds; 1 second to 1 hour.</summary>
    public TimeSpan Ttl { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>
    /// Gets or sets the HTTP path a registry may call to check the instance (a Consul HTTP check), or
    /// <see langword="null"/> (default) for a TTL check kept alive by heartbeats.
    /// </summary>
    public string? HealthCheckPath { get; set; }

    /// <summary>
    /// Gets the names of the registrars to use (for example <c>consul</c>); empty (default) uses every registered
    /// <see cref="Lodestar.Registration.IServiceRegistrar"/>.
    /// </summary>
    public IList<string> Registrars { get; } = new List<string>();

    /// <summary>
    /// Gets or sets how long deregistration may take on shutdown before the drain goes on without it (the registry's
    /// TTL then removes the instance). Default 5 seconds; 100 ms to 1 minute.
    /// </summary>
    public TimeSpan DeregisterTimeout { get; set; } = TimeSpan.FromSeconds(5);
}
