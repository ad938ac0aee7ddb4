using System.Net;

namespace Lodestar.Kubernetes;

/// <summary>
/// A failure talking to a Kubernetes API server or reading its configuration. The message names the cluster (server
/// URL and kubeconfig context) and never contains credentials.
/// </summary>
public sealed class KubernetesApiException : Exception
{
    /// <summary>Initializes a new instance.</summary>
    public KubernetesApiException()
        : this("The Kubernetes API request failed.")
    {
    }

    /// <summary>Initializes a new instance with a message.</summary>
    /// <param name="message">What went wrong, naming the cluster.</param>
    public KubernetesApiException(string message)
        : base(message)
    {
    }

    /// <summary>Initializes a new instance with a message and the underlying error.</summary>
    /// <param name="message">What went wrong, naming the cluster.</param>
    /// <param name="innerException">The underlying error.</param>
    public KubernetesApiException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Gets the HTTP status the API server answered with (or the code of a watch ERROR event), when there was one.</summary>
    public HttpStatusCode? StatusCode { get; init; }

    /// <summary>Gets the API server URL, when known.</summary>
    public Uri? Server { get; init; }
}
