namespace Lodestar.Kubernetes;

/// <summary>How the Kubernetes source asks the API server to encode EndpointSlice lists and watch events.</summary>
public enum KubernetesEncoding
{
    /// <summary>
    /// Protobuf when the API server offers it, else JSON: the source sends
    /// <c>Accept: application/vnd.kubernetes.protobuf, application/json</c> and reads whichever the answer is in.
    /// </summary>
    Auto = 0,

    /// <summary>Protobuf only (<c>application/vnd.kubernetes.protobuf</c>); a server that cannot answer so fails the request.</summary>
    Protobuf = 1,

    /// <summary>JSON only (<c>application/json</c>), as before protobuf support.</summary>
    Json = 2,
}
