using Microsoft.Extensions.Configuration;

namespace Lodestar.Testing;

/// <summary>An in-memory configuration whose whole content can be replaced, raising a reload as a file change would.</summary>
public sealed class MutableConfigurationSource : IConfigurationSource
{
    /// <summary>Gets the provider once built.</summary>
    public MutableConfigurationProvider Provider { get; } = new();

    /// <inheritdoc/>
    public IConfigurationProvider Build(IConfigurationBuilder builder) => Provider;
}

/// <summary>The provider behind <see cref="MutableConfigurationSource"/>.</summary>
public sealed class MutableConfigurationProvider : ConfigurationProvider
{
    /// <summary>Replaces every key and raises the reload token.</summary>
    public void Replace(IEnumerable<KeyValuePair<string, string?>> values)
    {
        Data = new Dictionary<string, string?>(values, StringComparer.OrdinalIgnoreCase);
        OnReload();
    }

    /// <summary>Declares a service's endpoints under <c>Lodestar:Services:{service}:Endpoints</c>, replacing everything.</summary>
    public void SetEndpoints(string service, params string[] endpoints)
        => Replace(endpoints.Select((e, i) => new KeyValuePair<string, string?>($"Lodestar:Services:{service}:Endpoints:{i}", e)));
}
