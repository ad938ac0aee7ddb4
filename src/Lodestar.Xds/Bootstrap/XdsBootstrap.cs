using Google.Protobuf.WellKnownTypes;

namespace Lodestar.Xds.Bootstrap;

/// <summary>A parsed and validated gRPC xDS bootstrap.</summary>
internal sealed class XdsBootstrap
{
    /// <summary>Gets where the bootstrap came from, for messages (a file path or a variable name).</summary>
    public required string Source { get; init; }

    /// <summary>Gets the management servers in the order listed; the client uses the first.</summary>
    public required IReadOnlyList<XdsServerConfig> Servers { get; init; }

    /// <summary>Gets the node identity sent to the control plane.</summary>
    public required XdsNodeConfig Node { get; init; }
}

/// <summary>How the client reaches and authenticates to a management server.</summary>
internal sealed class XdsServerConfig
{
    /// <summary>Gets the <c>server_uri</c> as written.</summary>
    public required string ServerUri { get; init; }

    /// <summary>Gets the host and port (TCP), or <see langword="null"/> for a unix socket.</summary>
    public string? Authority { get; init; }

    /// <summary>Gets the unix socket path, or <see langword="null"/>.</summary>
    public string? UnixSocketPath { get; init; }

    /// <summary>Gets whether the channel uses TLS.</summary>
    public bool UseTls { get; init; }

    /// <summary>Gets the CA bundle that replaces the system roots for TLS, or <see langword="null"/>.</summary>
    public string? CaCertificateFile { get; init; }

    /// <summary>Gets the client certificate for mutual TLS, or <see langword="null"/>.</summary>
    public string? CertificateFile { get; init; }

    /// <summary>Gets the client key for mutual TLS, or <see langword="null"/>.</summary>
    public string? PrivateKeyFile { get; init; }

    /// <summary>Gets the file holding a bearer token for the <c>authorization</c> header, or <see langword="null"/>.</summary>
    public string? TokenFile { get; init; }

    /// <summary>Gets the server features (<c>xds_v3</c>, <c>ignore_resource_deletion</c>, ...).</summary>
    public IReadOnlyList<string> ServerFeatures { get; init; } = [];

    /// <summary>Gets whether LDS and CDS resources missing from a response are kept instead of removed (gRFC A53).</summary>
    public bool IgnoreResourceDeletion => ServerFeatures.Contains("ignore_resource_deletion", StringComparer.Ordinal);

    /// <summary>Gets a display name for messages: the URI without credentials.</summary>
    public string DisplayName => ServerUri;
}

/// <summary>The node identity of the bootstrap.</summary>
internal sealed class XdsNodeConfig
{
    public string Id { get; init; } = string.Empty;

    public string Cluster { get; init; } = string.Empty;

    public Struct? Metadata { get; init; }

    public string Region { get; init; } = string.Empty;

    public string Zone { get; init; } = string.Empty;

    public string SubZone { get; init; } = string.Empty;
}

/// <summary>The bootstrap is missing, unreadable or invalid; the message names the field and where the bootstrap came from.</summary>
internal sealed class XdsBootstrapException : Exception
{
    public XdsBootstrapException(string message)
        : base(message)
    {
    }

    public XdsBootstrapException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public XdsBootstrapException()
    {
    }
}
