using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;

namespace Lodestar.Kubernetes.Api.Internal;

/// <summary>Reads the configuration every pod gets: API server address from the environment, service-account files.</summary>
internal static class InClusterConfig
{
    public const string ServiceAccountDirectory = "/var/run/secrets/kubernetes.io/serviceaccount";

    /// <summary>Returns whether the process runs in a pod (the API server's environment variables are set).</summary>
    public static bool IsAvailable(Func<string, string?> environment)
        => !string.IsNullOrEmpty(environment("KUBERNETES_SERVICE_HOST")) && !string.IsNullOrEmpty(environment("KUBERNETES_SERVICE_PORT"));

    /// <summary>Builds the in-cluster configuration.</summary>
    /// <exception cref="KubernetesApiException">The environment or the service-account files are missing or invalid.</exception>
    public static ClusterConfig Load(Func<string, string?> environment, string directory = ServiceAccountDirectory)
    {
        var host = environment("KUBERNETES_SERVICE_HOST");
        var port = environment("KUBERNETES_SERVICE_PORT");
        if (string.IsNullOrEmpty(host) || string.IsNullOrEmpty(port))
        {
            throw new KubernetesApiException("In-cluster configuration needs KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT; they are not set, so this process is not running in a pod. Set a kubeconfig instead.");
        }

        if (!int.TryParse(port, NumberStyles.None, CultureInfo.InvariantCulture, out var portNumber) || portNumber is < 1 or > 65535)
        {
            throw new KubernetesApiException($"KUBERNETES_SERVICE_PORT is '{port}', not a TCP port.");
        }

        var authority = IPAddress.TryParse(host, out var ip) && ip.AddressFamily == AddressFamily.InterNetworkV6 ? "[" + host + "]" : host;
        var server = new Uri(string.Create(CultureInfo.InvariantCulture, $"https://{authority}:{portNumber}"));
        var displayName = $"Kubernetes API server {server.GetLeftPart(UriPartial.Authority)} (in-cluster service account)";

        var tokenFile = Path.Combine(directory, "token");
        if (!File.Exists(tokenFile))
        {
            throw new KubernetesApiException($"The service-account token {tokenFile} for {displayName} does not exist; is automountServiceAccountToken off?") { Server = server };
        }

        X509Certificate2Collection? authorities = null;
        var caFile = Path.Combine(directory, "ca.crt");
        if (File.Exists(caFile))
        {
            authorities = KubeconfigLoader.ReadCertificates(File.ReadAllText(caFile), caFile, displayName);
        }

        var namespaceFile = Path.Combine(directory, "namespace");
        var ns = File.Exists(namespaceFile) ? File.ReadAllText(namespaceFile).Trim() : null;
        return new ClusterConfig
        {
            Server = server,
            DisplayName = displayName,
            Namespace = string.IsNullOrEmpty(ns) ? null : ns,
            TokenFile = tokenFile,
            CertificateAuthorities = authorities,
        };
    }
}
