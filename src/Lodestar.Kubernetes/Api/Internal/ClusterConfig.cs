using System.Security.Cryptography.X509Certificates;

namespace Lodestar.Kubernetes.Api.Internal;

/// <summary>How to reach and authenticate to one cluster, from kubeconfig or the in-cluster service account.</summary>
internal sealed class ClusterConfig
{
    public required Uri Server { get; init; }

    /// <summary>Gets how errors name the cluster: server URL plus context (or "in-cluster"). Never holds a credential.</summary>
    public required string DisplayName { get; init; }

    /// <summary>Gets the namespace of the context or of the pod, when known.</summary>
    public string? Namespace { get; init; }

    /// <summary>Gets the bearer token written in the configuration, when there is one.</summary>
    public string? Token { get; init; }

    /// <summary>Gets the file holding the bearer token (re-read periodically), when there is one.</summary>
    public string? TokenFile { get; init; }

    public X509Certificate2? ClientCertificate { get; init; }

    /// <summary>
    /// Gets secret text read from the configuration (the token, the client key as written and as PEM), masked wherever
    /// it might reappear in text a server sent.
    /// </summary>
    public IReadOnlyList<string> Secrets { get; init; } = [];

    /// <summary>Gets the certificate authorities trusted for the server, or <see langword="null"/> for the system's.</summary>
    public X509Certificate2Collection? CertificateAuthorities { get; init; }

    public bool InsecureSkipTlsVerify { get; init; }

    /// <summary>Gets the exec credential plugin that supplies the token or client certificate, when the user has one.</summary>
    public ExecCredentialConfig? Exec { get; init; }

    /// <summary>
    /// Gets the name the server certificate must carry and the client sends in TLS SNI, when it differs from the host of
    /// <see cref="Server"/> (kubeconfig's <c>tls-server-name</c>), or <see langword="null"/> to use that host.
    /// </summary>
    public string? TlsServerName { get; init; }
}
