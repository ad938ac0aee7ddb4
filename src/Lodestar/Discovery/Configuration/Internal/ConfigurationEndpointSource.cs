using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using Lodestar.Endpoints;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Primitives;

namespace Lodestar.Discovery.Configuration.Internal;

/// <summary>
/// One service's endpoints read from configuration. Its list is a read of the configuration; its watch is the reload
/// token, and a reload lists again.
/// </summary>
/// <remarks>
/// <para>
/// A read that leaves nothing to route to by mistake keeps the previous set: a non-empty list none of whose entries is
/// valid, a value of the wrong shape (a single string where a list belongs, a service section without
/// <c>Endpoints</c>), or a service that is no longer declared at all (an appsettings.json that failed to parse on
/// reload leaves its provider empty). Each says why, naming the key path. Only an explicitly empty list
/// (<c>"Endpoints": []</c>, or an empty value as an environment variable sets it) removes every endpoint.
/// </para>
/// <para>
/// The reload token is taken before the configuration is read, so a reload that lands between the read and the wait
/// is not lost; a burst of reloads during one read costs one more read.
/// </para>
/// </remarks>
internal sealed class ConfigurationEndpointSource : ListWatchEndpointSource<IChangeToken>
{
    private const string EndpointsKey = "Endpoints";

    private readonly IConfiguration _configuration;
    private readonly ConfigurationSourceOptions _options;

    public ConfigurationEndpointSource(string serviceName, IConfiguration configuration, ConfigurationSourceOptions options, TimeProvider? timeProvider = null, ILogger? logger = null)
        : base(serviceName, new BackoffOptions(), timeProvider ?? TimeProvider.System, logger)
    {
        _configuration = configuration;
        _options = options;
    }

    /// <inheritdoc/>
    protected override Task<IChangeToken> ListAsync(WatchContext<IChangeToken> context, CancellationToken cancellationToken)
    {
        var token = _configuration.GetReloadToken();
        var read = Read();
        // Publish first: entry errors are then reported beside the set they were left out of.
        if (read.Endpoints is { } endpoints)
        {
            context.Publish(endpoints);
        }

        foreach (var error in read.Errors)
        {
            context.ReportError(error);
        }

        return Task.FromResult(token);
    }

    /// <inheritdoc/>
    protected override async Task<WatchOutcome> WatchAsync(IChangeToken cursor, WatchContext<IChangeToken> context, CancellationToken cancellationToken)
    {
        if (!cursor.HasChanged)
        {
            var changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            using var registration = cursor.RegisterChangeCallback(static state => ((TaskCompletionSource)state!).TrySetResult(), changed);
            await changed.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }

        return WatchOutcome.Refresh;
    }

    /// <summary>Reads the service's declaration once.</summary>
    /// <returns>The endpoints to publish, or none to keep the previous set, and every problem found.</returns>
    internal ConfigurationRead Read()
    {
        var state = new ReadState();
        var own = _configuration.GetSection(_options.SectionName).GetSection(ServiceName);
        ReadOwn(own, state);
        var compatible = CompatibilityPath(_options, ServiceName);
        if (compatible is not null)
        {
            var section = _configuration.GetSection(compatible);
            if (NamedEndpoint.TryParse(ServiceName, out _, out var endpointName))
            {
                ReadCompatibleNamed(section, endpointName, state);
            }
            else
            {
                ReadCompatible(section, state);
            }
        }

        if (!state.Declared)
        {
            var where = compatible is null ? $"'{own.Path}'" : $"'{own.Path}' nor '{compatible}'";
            state.Errors.Add(new FormatException(
                $"Service '{ServiceName}' is no longer declared in configuration (neither {where}); the previous endpoint set stays in force. "
                + $"An empty list ('{own.Path}:{EndpointsKey}': []) removes every endpoint."));
            return new ConfigurationRead(null, state.Errors);
        }

        if (state.WrongShape)
        {
            return new ConfigurationRead(null, state.Errors);
        }

        if (state.Entries > 0 && state.Endpoints.Count == 0)
        {
            state.Errors.Add(new FormatException(string.Create(CultureInfo.InvariantCulture,
                $"None of the {state.Entries} entries of {string.Join(" and ", state.Lists.Select(l => "'" + l + "'"))} is a valid endpoint; the previous endpoint set stays in force. An empty list ([]) removes every endpoint.")));
            return new ConfigurationRead(null, state.Errors);
        }

        return new ConfigurationRead(state.Endpoints, state.Errors);
    }

    private static void ReadOwn(IConfigurationSection service, ReadState state)
    {
        if (service.Value is not null)
        {
            state.Declared = true;
            state.WrongShape = true;
            state.Errors.Add(new FormatException(
                $"Configuration value '{service.Path}' is a single value where a section with an '{EndpointsKey}' list is expected; the previous endpoint set stays in force."));
            return;
        }

        var children = service.GetChildren().ToList();
        if (children.Count == 0)
        {
            return;
        }

        state.Declared = true;
        var list = children.FirstOrDefault(c => string.Equals(c.Key, EndpointsKey, StringComparison.OrdinalIgnoreCase));
        if (list is null)
        {
            state.WrongShape = true;
            state.Errors.Add(new FormatException(
                $"Configuration section '{service.Path}' has no '{EndpointsKey}' list (it has {string.Join(", ", children.Select(c => "'" + c.Key + "'"))}); the previous endpoint set stays in force."));
            return;
        }

        if (list.Value is { } value)
        {
            // An empty value is how an environment variable or an INI file says "no endpoints".
            if (value.Trim().Length > 0)
            {
                state.WrongShape = true;
                state.Errors.Add(new FormatException(
                    $"Configuration value '{list.Path}' is a single string where a list of endpoints is expected (write [\"...\"] or '{list.Path}:0'); the previous endpoint set stays in force."));
            }

            return;
        }

        state.Lists.Add(list.Path);
        foreach (var entry in list.GetChildren())
        {
            state.Entries++;
            if (entry.Value is not null)
            {
                Add(entry.Path, entry.Value, null, null, state);
                continue;
            }

            var address = entry["Address"] ?? entry["Uri"] ?? entry["Url"];
            if (address is null)
            {
                state.Errors.Add(new FormatException($"Configuration entry '{entry.Path}' has no Address."));
                continue;
            }

            Add(entry.Path, address, entry, null, state);
        }
    }

    private static void ReadCompatible(IConfigurationSection service, ReadState state)
    {
        if (service.Value is not null)
        {
            state.Declared = true;
            state.WrongShape = true;
            state.Errors.Add(new FormatException(
                $"Configuration value '{service.Path}' is a single value where a section such as '{service.Path}:http' is expected; the previous endpoint set stays in force."));
            return;
        }

        var listed = false;
        foreach (var child in service.GetChildren())
        {
            state.Declared = true;
            if (child.Value is not null)
            {
                // Services:orders:0 = "host:port"
                if (!listed)
                {
                    state.Lists.Add(service.Path);
                    listed = true;
                }

                state.Entries++;
                Add(child.Path, child.Value, null, null, state);
                continue;
            }

            var scheme = child.Key.ToLowerInvariant();
            if (scheme is not ("http" or "https"))
            {
                // Named endpoints (Services:orders:grpc:0) are addressed by name; they are not part of the default set.
                continue;
            }

            state.Lists.Add(child.Path);
            foreach (var item in child.GetChildren())
            {
                state.Entries++;
                if (item.Value is not null)
                {
                    Add(item.Path, item.Value, null, scheme, state);
                }
                else
                {
                    state.Errors.Add(new FormatException($"Configuration entry '{item.Path}' is a section; an address string is expected."));
                }
            }
        }
    }

    /// <summary>
    /// Gets the key of the service in the section read in Microsoft.Extensions.ServiceDiscovery's shape, or
    /// <see langword="null"/> when that section is off: <c>Services:orders</c> for <c>orders</c>, and for a named endpoint
    /// as that library writes it (<c>_grpc.orders</c>, from <c>https+http://_grpc.orders</c>) the endpoint's own section,
    /// <c>Services:orders:grpc</c>.
    /// </summary>
    internal static string? CompatibilityPath(ConfigurationSourceOptions options, string serviceName)
    {
        if (string.IsNullOrEmpty(options.CompatibilitySectionName))
        {
            return null;
        }

        return NamedEndpoint.TryParse(serviceName, out var service, out var endpointName)
            ? ConfigurationPath.Combine(options.CompatibilitySectionName, service, endpointName)
            : ConfigurationPath.Combine(options.CompatibilitySectionName, serviceName);
    }

    private static void ReadCompatibleNamed(IConfigurationSection endpoint, string endpointName, ReadState state)
    {
        // Services:orders:grpc holds one address, or a list of them (Services:orders:grpc:0), as the library reads it.
        var scheme = endpointName.ToLowerInvariant() is "http" or "https" ? endpointName.ToLowerInvariant() : null;
        if (endpoint.Value is { } single)
        {
            state.Declared = true;
            state.Lists.Add(endpoint.Path);
            if (single.Trim().Length > 0)
            {
                state.Entries++;
                Add(endpoint.Path, single, null, scheme, state);
            }

            return;
        }

        var children = endpoint.GetChildren().ToList();
        if (children.Count == 0)
        {
            return;
        }

        state.Declared = true;
        state.Lists.Add(endpoint.Path);
        foreach (var item in children)
        {
            state.Entries++;
            if (item.Value is not null)
            {
                Add(item.Path, item.Value, null, scheme, state);
            }
            else
            {
                state.Errors.Add(new FormatException($"Configuration entry '{item.Path}' is a section; an address string is expected."));
            }
        }
    }

    private static void Add(string path, string address, IConfigurationSection? attributes, string? scheme, ReadState state)
    {
        if (!DiscoveredEndpoint.TryParse(address, 0, out var parsed, out var error))
        {
            state.Errors.Add(new FormatException($"Configuration entry '{path}' is not a valid endpoint: {error}."));
            return;
        }

        var weight = 1;
        var priority = 0;
        string? zone = null;
        Dictionary<string, string>? metadata = null;
        if (attributes is not null)
        {
            if (!TryReadInt(attributes, "Weight", 1, ref weight, state.Errors) || !TryReadInt(attributes, "Priority", 0, ref priority, state.Errors))
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
            state.Errors.Add(new FormatException($"Configuration entry '{path}' is not a valid endpoint: {error}."));
            return;
        }

        state.Endpoints.Add(endpoint);
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

    private sealed class ReadState
    {
        public List<DiscoveredEndpoint> Endpoints { get; } = [];

        public List<Exception> Errors { get; } = [];

        /// <summary>Gets the key paths of the lists read, for messages.</summary>
        public List<string> Lists { get; } = [];

        /// <summary>Gets or sets how many entries the lists hold, valid or not.</summary>
        public int Entries { get; set; }

        /// <summary>Gets or sets whether either section declares the service.</summary>
        public bool Declared { get; set; }

        /// <summary>Gets or sets whether a value has the wrong shape, which keeps the previous set.</summary>
        public bool WrongShape { get; set; }
    }
}

/// <summary>
/// Reads a service name that names one endpoint of a service the way Microsoft.Extensions.ServiceDiscovery writes it:
/// <c>_{endpoint}.{service}</c>, the host of <c>https+http://_grpc.orders</c>.
/// </summary>
internal static class NamedEndpoint
{
    /// <summary>Splits <c>_grpc.orders</c> into service <c>orders</c> and endpoint <c>grpc</c>; other names are not named endpoints.</summary>
    public static bool TryParse(string name, [NotNullWhen(true)] out string? service, [NotNullWhen(true)] out string? endpoint)
    {
        var dot = name.IndexOf('.', StringComparison.Ordinal);
        if (name.Length > 0 && name[0] == '_' && dot > 1 && name[^1] != '.')
        {
            endpoint = name[1..dot];
            service = name[(dot + 1)..];
            return true;
        }

        service = null;
        endpoint = null;
        return false;
    }
}

/// <summary>What one read of a service's configuration found.</summary>
/// <param name="Endpoints">The endpoints to publish, or <see langword="null"/> to keep the previous set.</param>
/// <param name="Errors">Every problem found, each naming its key path.</param>
internal readonly record struct ConfigurationRead(IReadOnlyList<DiscoveredEndpoint>? Endpoints, IReadOnlyList<Exception> Errors);
