namespace Lodestar.Health;

/// <summary>The protocols active health checks know by name: the values of <see cref="HealthCheckOptions.Protocol"/>.</summary>
public static class HealthCheckProtocols
{
    /// <summary>An HTTP GET on <see cref="HealthCheckOptions.Path"/>; a status from <see cref="HealthCheckOptions.MinHealthyStatus"/> to <see cref="HealthCheckOptions.MaxHealthyStatus"/> passes. Built in; the default.</summary>
    public const string Http = "Http";

    /// <summary>
    /// gRPC's <c>grpc.health.v1.Health/Check</c> for <see cref="HealthCheckOptions.GrpcServiceName"/>; <c>SERVING</c>
    /// passes. Needs the Lodestar.Grpc package and <c>services.AddLodestarGrpc()</c>.
    /// </summary>
    public const string Grpc = "Grpc";
}
