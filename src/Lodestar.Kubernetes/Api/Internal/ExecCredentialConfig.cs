namespace Lodestar.Kubernetes.Api.Internal;

/// <summary>
/// A kubeconfig user's <c>exec</c> credential plugin (<c>client.authentication.k8s.io</c> v1 or v1beta1), resolved
/// against the file that defined it, plus what <c>provideClusterInfo</c> hands the plugin about the cluster.
/// </summary>
internal sealed class ExecCredentialConfig
{
    /// <summary>The API version of the v1 ExecCredential.</summary>
    public const string V1 = "client.authentication.k8s.io/v1";

    /// <summary>The API version of the v1beta1 ExecCredential.</summary>
    public const string V1Beta1 = "client.authentication.k8s.io/v1beta1";

    /// <summary>Gets the command as the kubeconfig wrote it (for messages).</summary>
    public required string Command { get; init; }

    /// <summary>Gets the command to start: a relative path holding a separator is resolved against the kubeconfig's folder.</summary>
    public required string ResolvedCommand { get; init; }

    public IReadOnlyList<string> Args { get; init; } = [];

    /// <summary>Gets the variables added to the plugin's environment, in order (a later one wins).</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Environment { get; init; } = [];

    /// <summary>Gets the ExecCredential API version the plugin speaks: <see cref="V1"/> or <see cref="V1Beta1"/>.</summary>
    public required string ApiVersion { get; init; }

    /// <summary>Gets the text shown when the command cannot be started, telling the user how to install it.</summary>
    public string? InstallHint { get; init; }

    /// <summary>Gets whether the plugin is told the cluster's server, CA and TLS name in <c>KUBERNETES_EXEC_INFO</c>.</summary>
    public bool ProvideClusterInfo { get; init; }

    /// <summary>Gets the kubeconfig context the plugin serves (for messages).</summary>
    public required string ContextName { get; init; }

    /// <summary>Gets the cluster's server URL as the kubeconfig wrote it.</summary>
    public required string Server { get; init; }

    /// <summary>Gets the cluster's CA as PEM, when the kubeconfig names one.</summary>
    public string? CertificateAuthorityPem { get; init; }

    public string? TlsServerName { get; init; }

    public bool InsecureSkipTlsVerify { get; init; }
}
