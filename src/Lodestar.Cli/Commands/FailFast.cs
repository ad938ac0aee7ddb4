using System.Net;
using System.Net.Sockets;
using System.Security.Authentication;
using Lodestar.Consul;
using Lodestar.Etcd;
using Lodestar.Kubernetes;

namespace Lodestar.Cli.Commands;

/// <summary>
/// Decides which source error, arriving before the first endpoint set, ends a command at once instead of waiting for
/// <see cref="LodestarOptions.ResolutionTimeout"/>: a registry that refused the connection, could not be found or
/// refused the credentials will not answer better later, while a slow one may still answer in time.
/// </summary>
internal static class FailFast
{
    public static bool Stops(Exception error, string sourceName)
    {
        // Before the first set the configuration source reports only whole-service problems (entry errors follow a set).
        if (string.Equals(sourceName, "configuration", StringComparison.OrdinalIgnoreCase))
        {
            return true;
        }

        for (var current = error; current is not null; current = current.InnerException)
        {
            switch (current)
            {
                case TimeoutException or OperationCanceledException:
                    return false;
                case SocketException socket when socket.SocketErrorCode is not SocketError.TimedOut:
                    return true;
                case HttpRequestException { HttpRequestError: HttpRequestError.ConnectionError or HttpRequestError.NameResolutionError or HttpRequestError.SecureConnectionError }:
                    return true;
                case AuthenticationException:
                    return true;
                case ConsulException { StatusCode: HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden }:
                    return true;
                case EtcdException { IsUnreachable: true } or EtcdException { GrpcCode: 16 }:
                    return true;
                case KubernetesApiException { StatusCode: HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden }:
                    return true;
            }
        }

        return false;
    }
}
