using Lodestar.Health;

namespace Lodestar.Grpc.Health.Internal;

/// <summary>Creates <see cref="GrpcHealthProbe"/>s for <see cref="HealthCheckProtocols.Grpc"/>; registered by <c>AddLodestarGrpc()</c>.</summary>
internal sealed class GrpcHealthProbeFactory : HealthProbeFactory
{
    public override string Protocol => HealthCheckProtocols.Grpc;

    public override HealthProbe Create(string serviceName, HealthCheckOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return new GrpcHealthProbe(options);
    }
}
