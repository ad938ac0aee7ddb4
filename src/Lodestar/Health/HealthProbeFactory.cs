namespace Lodestar.Health;

/// <summary>
/// Creates the <see cref="HealthProbe"/> of one health stage for a protocol: register one in the container
/// (<c>services.TryAddEnumerable(ServiceDescriptor.Singleton&lt;HealthProbeFactory, MyProbeFactory&gt;())</c>) and select
/// it with <see cref="HealthCheckOptions.Protocol"/>.
/// </summary>
/// <remarks>
/// <see cref="HealthCheckProtocols.Http"/> is built in; Lodestar.Grpc's <c>AddLodestarGrpc()</c> registers
/// <see cref="HealthCheckProtocols.Grpc"/>. A registered factory with the name of a built-in protocol replaces it; of two
/// registered with one name, the later wins. Protocol names compare without regard to case.
/// </remarks>
public abstract class HealthProbeFactory
{
    /// <summary>Gets the protocol name that <see cref="HealthCheckOptions.Protocol"/> selects this factory by.</summary>
    public abstract string Protocol { get; }

    /// <summary>Creates the probe for one health stage; it is disposed when the stage is.</summary>
    /// <param name="serviceName">The service whose endpoints the probe checks.</param>
    /// <param name="options">The stage's effective check settings (a copy the probe may keep; do not change it).</param>
    /// <returns>The probe.</returns>
    public abstract HealthProbe Create(string serviceName, HealthCheckOptions options);
}
