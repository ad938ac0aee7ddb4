using System.Diagnostics.CodeAnalysis;

namespace Lodestar.Discovery;

/// <summary>
/// Creates <see cref="IEndpointSource"/> instances for one kind of registry. Register implementations with
/// <c>TryAddEnumerable</c>; the endpoint cache asks them in registration order unless a source is named.
/// </summary>
public interface IEndpointSourceProvider
{
    /// <summary>Gets the source name used in options and the CLI, for example <c>configuration</c> or <c>kubernetes</c>.</summary>
    string Name { get; }

    /// <summary>Creates a source for <paramref name="serviceName"/> when this registry can serve it.</summary>
    /// <param name="serviceName">The logical service name: the host of a logical URI such as <c>http://orders/</c>.</param>
    /// <param name="source">The source when this provider accepts the service.</param>
    /// <returns><see langword="true"/> when the provider accepts the service.</returns>
    bool TryCreateSource(string serviceName, [NotNullWhen(true)] out IEndpointSource? source);
}
