using System.Globalization;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Lodestar.Consul.Internal;

/// <summary>Binds <see cref="ConsulOptions"/> from the <c>Lodestar:Consul</c> section when an <see cref="IConfiguration"/> is registered.</summary>
internal sealed class ConsulOptionsSetup : IConfigureOptions<ConsulOptions>
{
    private readonly IServiceProvider _services;

    public ConsulOptionsSetup(IServiceProvider services)
    {
        _services = services;
    }

    public void Configure(ConsulOptions options)
        => _services.GetService<IConfiguration>()?.GetSection(ConsulOptions.SectionName).Bind(options);
}

/// <summary>
/// Fills unset connection settings from Consul's own environment variables, as the <c>consul</c> command does. Runs after
/// configuration and code, so explicit settings win.
/// </summary>
internal sealed class ConsulEnvironmentPostConfigure : IPostConfigureOptions<ConsulOptions>
{
    private readonly Func<string, string?> _environment;

    public ConsulEnvironmentPostConfigure(Func<string, string?> environment)
    {
        _environment = environment;
    }

    public void PostConfigure(string? name, ConsulOptions options)
    {
        if (string.IsNullOrWhiteSpace(options.Address))
        {
            options.Address = NormalizeAddress(_environment("CONSUL_HTTP_ADDR"), _environment("CONSUL_HTTP_SSL")) ?? ConsulOptions.DefaultAddress;
        }

        if (string.IsNullOrEmpty(options.Token))
        {
            var token = _environment("CONSUL_HTTP_TOKEN");
            options.Token = string.IsNullOrWhiteSpace(token) ? null : token.Trim();
        }

        options.CaCertificatePath ??= Empty(_environment("CONSUL_CACERT"));
        options.ClientCertificatePath ??= Empty(_environment("CONSUL_CLIENT_CERT"));
        options.ClientKeyPath ??= Empty(_environment("CONSUL_CLIENT_KEY"));
        if (string.Equals(_environment("CONSUL_HTTP_SSL_VERIFY"), "false", StringComparison.OrdinalIgnoreCase))
        {
            options.TlsSkipVerify = true;
        }
    }

    /// <summary><c>CONSUL_HTTP_ADDR</c> may omit the scheme (<c>127.0.0.1:8500</c>); <c>CONSUL_HTTP_SSL=true</c> then means https.</summary>
    internal static string? NormalizeAddress(string? address, string? ssl)
    {
        if (string.IsNullOrWhiteSpace(address))
        {
            return null;
        }

        address = address.Trim();
        if (address.Contains("://", StringComparison.Ordinal))
        {
            return address;
        }

        var https = string.Equals(ssl, "true", StringComparison.OrdinalIgnoreCase) || ssl == "1";
        return (https ? "https://" : "http://") + address;
    }

    private static string? Empty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value;
}

/// <summary>Checks <see cref="ConsulOptions"/> at startup, naming each bad setting.</summary>
internal sealed class ConsulOptionsValidator : IValidateOptions<ConsulOptions>
{
    private const long MinResponseBytes = 1024;
    private const long MaxResponseBytes = 1024L * 1024 * 1024;

    public ValidateOptionsResult Validate(string? name, ConsulOptions options)
    {
        var failures = new List<string>();
        var address = string.IsNullOrWhiteSpace(options.Address) ? ConsulOptions.DefaultAddress : options.Address;
        if (!Uri.TryCreate(address, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https") || string.IsNullOrEmpty(uri.Host))
        {
            failures.Add($"{nameof(ConsulOptions)}.{nameof(ConsulOptions.Address)} is '{address}'; it must be an absolute http or https URL such as {ConsulOptions.DefaultAddress}.");
        }

        Range(nameof(ConsulOptions.WaitTime), options.WaitTime, TimeSpan.FromMilliseconds(100), TimeSpan.FromMinutes(10), failures);
        Range(nameof(ConsulOptions.MinQueryInterval), options.MinQueryInterval, TimeSpan.FromMilliseconds(1), TimeSpan.FromSeconds(10), failures);
        if (options.Backoff.Validate(ConsulOptions.SectionName + ":" + nameof(ConsulOptions.Backoff)) is { } backoff)
        {
            failures.Add(backoff);
        }

        if (options.MaxResponseBytes is < MinResponseBytes or > MaxResponseBytes)
        {
            failures.Add(string.Create(CultureInfo.InvariantCulture,
                $"{nameof(ConsulOptions)}.{nameof(ConsulOptions.MaxResponseBytes)} is {options.MaxResponseBytes}; it must be between {MinResponseBytes} (1 KiB) and {MaxResponseBytes} (1 GiB)."));
        }

        Range(nameof(ConsulOptions.RequestTimeout), options.RequestTimeout, TimeSpan.FromMilliseconds(100), TimeSpan.FromMinutes(5), failures);
        Range(nameof(ConsulOptions.DeregisterCriticalServiceAfter), options.DeregisterCriticalServiceAfter, TimeSpan.FromSeconds(1), TimeSpan.FromDays(365), failures);
        Range(nameof(ConsulOptions.HttpCheckInterval), options.HttpCheckInterval, TimeSpan.FromMilliseconds(100), TimeSpan.FromHours(1), failures);
        Range(nameof(ConsulOptions.HttpCheckTimeout), options.HttpCheckTimeout, TimeSpan.FromMilliseconds(100), TimeSpan.FromHours(1), failures);
        if (options.Tags.Any(string.IsNullOrWhiteSpace))
        {
            failures.Add($"{nameof(ConsulOptions)}.{nameof(ConsulOptions.Tags)} contains an empty tag.");
        }

        if (string.IsNullOrWhiteSpace(options.ZoneMetadataKey))
        {
            failures.Add($"{nameof(ConsulOptions)}.{nameof(ConsulOptions.ZoneMetadataKey)} is empty.");
        }

        if (options.Token is { } token && token.Any(char.IsControl))
        {
            // Never echo the token itself.
            failures.Add($"{nameof(ConsulOptions)}.{nameof(ConsulOptions.Token)} contains control characters (a stray newline?).");
        }

        if ((options.ClientCertificatePath is null) != (options.ClientKeyPath is null))
        {
            failures.Add($"{nameof(ConsulOptions)}.{nameof(ConsulOptions.ClientCertificatePath)} and {nameof(ConsulOptions.ClientKeyPath)} must be set together.");
        }

        File(nameof(ConsulOptions.CaCertificatePath), options.CaCertificatePath, failures);
        File(nameof(ConsulOptions.ClientCertificatePath), options.ClientCertificatePath, failures);
        File(nameof(ConsulOptions.ClientKeyPath), options.ClientKeyPath, failures);
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    private static void Range(string name, TimeSpan value, TimeSpan min, TimeSpan max, List<string> failures)
    {
        if (value < min || value > max)
        {
            failures.Add($"{nameof(ConsulOptions)}.{name} is {value}; it must be between {min} and {max}.");
        }
    }

    private static void File(string name, string? path, List<string> failures)
    {
        if (path is not null && !System.IO.File.Exists(path))
        {
            failures.Add($"{nameof(ConsulOptions)}.{name} is '{path}', which does not exist.");
        }
    }
}
