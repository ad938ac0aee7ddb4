using System.Globalization;
using Lodestar.Endpoints;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Primitives;

namespace Lodestar.Discovery.Configuration.Internal;

/// <summary>One service's endpoints read from configuration; re-read on every configuration reload.</summary>
internal sealed class ConfigurationEndpointSource : IEndpointSource
{
    private readonly string _serviceName;
    private readonly IConfiguration _configuration;
    private readonly ConfigurationSourceOptions _options;

    public ConfigurationEndpointSource(string serviceName, IConfiguration configuration, ConfigurationSourceOptions options)
    {
        _serviceName = serviceName;
        _configuration = configuration;
        _options = options;
    }

    public async Task RunAsync(IEndpointObserver observer, CancellationToken cancellationToken)
    {
        using var changed = new SemaphoreSlim(0, 1);
        using var registration = ChangeToken.OnChange(_configuration.GetReloadToken, () =>
        {
            // Coalesce bursts of reloads into one re-read.
            try
            {
                changed.Release();
            }
            catch (SemaphoreFullException)
            {
            }
            catch (ObjectDisposedException)
            {
            }
        });

        while (!cancellationToken.IsCancellationRequested)
        {
            var endpoints = Read(out var errors);
            foreach (var error in errors)
            {
                observer.OnError(error);
            }

            observer.OnEndpoints(endpoints);
            try
            {
                await changed.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    internal List<DiscoveredEndpoint> Read(out List<Exception> errors)
    {
        errors = [];
        var endpoints = new List<DiscoveredEndpoint>();
        ReadOwn(_configuration.GetSection(_options.SectionName).GetSection(_serviceName), endpoints, errors);
        if (!string.IsNullOrEmpty(_options.CompatibilitySectionName))
        {
            ReadCompatible(_configuration.GetSection(_options.CompatibilitySectionName).GetSection(_serviceName), endpoints, errors);
        }

        return endpoints;
    }

    private static void ReadOwn(IConfigurationSection service, List<DiscoveredEndpoint> endpoints, List<Exception> errors)
    {
        foreach (var entry in service.GetSection("Endpoints").GetChildren())
        {
            if (entry.Value is not null)
            {
                Add(entry.Path, entry.Value, null, null, endpoints, errors);
                continue;
            }

            var address = entry["Address"] ?? entry["Uri"] ?? entry["Url"];
            if (address is null)
            {
                errors.Add(new FormatException($"Configuration entry '{entry.Path}' has no Address."));
                continue;
            }

            Add(entry.Path, address, entry, null, endpoints, errors);
        }
    }

    private static void ReadCompatible(IConfigurationSection service, List<DiscoveredEndpoint> endpoints, List<Exception> errors)
    {
        foreach (var child in service.GetChildren())
        {
            if (child.Value is not null)
            {
                // Services:orders:0 = "host:port"
                Add(child.Path, child.Value, null, null, endpoints, errors);
                continue;
            }

            var scheme = child.Key.ToLowerInvariant();
            if (scheme is not ("http" or "https"))
            {
                // Named endpoints (Services:orders:grpc:0) are addressed by name; they are not part of the default set.
                continue;
            }

            foreach (var item in child.GetChildren())
            {
                if (item.Value is not null)
                {
                    Add(item.Path, item.Value, null, scheme, endpoints, errors);
                }
            }
        }
    }

    private static void Add(string path, string address, IConfigurationSection? attributes, string? scheme, List<DiscoveredEndpoint> endpoints, List<Exception> errors)
    {
        if (!DiscoveredEndpoint.TryParse(address, 0, out var parsed, out var error))
        {
            errors.Add(new FormatException($"Configuration entry '{path}' is not a valid endpoint: {error}."));
            return;
        }

        var weight = 1;
        var priority = 0;
        string? zone = null;
        Dictionary<string, string>? metadata = null;
        if (attributes is not null)
        {
            if (!TryReadInt(attributes, "Weight", 1, ref weight, errors) || !TryReadInt(attributes, "Priority", 0, ref priority, errors))
            {
                return;
            }

            zone = attributes["Zone"];
            foreach (var pair in attributes.GetSection("Metadata").GetChildren())
            {
                if (pair.Value is not null)
                {
                    (metadata ??= new(StringComparer.Ordinal))[pair.Key] = pair.Value;
                }
            }
        }

        if (!DiscoveredEndpoint.TryCreate(parsed.Host, parsed.Port, parsed.Scheme ?? scheme, weight, zone, metadata, priority, out var endpoint, out error))
        {
            errors.Add(new FormatException($"Configuration entry '{path}' is not a valid endpoint: {error}."));
            return;
        }

        endpoints.Add(endpoint);
    }

    private static bool TryReadInt(IConfigurationSection section, string key, int fallback, ref int value, List<Exception> errors)
    {
        var text = section[key];
        if (text is null)
        {
            value = fallback;
            return true;
        }

        if (!int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out value))
        {
            errors.Add(new FormatException($"Configuration entry '{section.Path}:{key}' is '{text}', not a whole number."));
            return false;
        }

        return true;
    }
}
