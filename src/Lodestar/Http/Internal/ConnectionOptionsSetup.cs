using System.Globalization;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Lodestar.Http.Internal;

/// <summary>
/// Binds a service's <see cref="ConnectionOptions"/> from <c>Lodestar:Services:&lt;service&gt;:Connections</c> when an
/// <see cref="IConfiguration"/> is registered; the options are named after the service.
/// </summary>
internal sealed class ConnectionOptionsSetup(IServiceProvider services) : IConfigureNamedOptions<ConnectionOptions>
{
    public const string ServicesPath = LodestarOptions.SectionName + ":Services";

    public void Configure(ConnectionOptions options) => Configure(Options.DefaultName, options);

    public void Configure(string? name, ConnectionOptions options)
    {
        if (string.IsNullOrEmpty(name))
        {
            return;
        }

        services.GetService<IConfiguration>()?.GetSection(ServicesPath).GetSection(name).GetSection(ConnectionOptions.SectionName).Bind(options);
    }
}

/// <summary>Checks the ranges of <see cref="ConnectionOptions"/>; messages name the service and the property.</summary>
internal sealed class ConnectionOptionsValidator : IValidateOptions<ConnectionOptions>
{
    public ValidateOptionsResult Validate(string? name, ConnectionOptions options)
    {
        var failures = new List<string>();
        var prefix = string.IsNullOrEmpty(name) ? nameof(ConnectionOptions) : $"{nameof(ConnectionOptions)} of service '{name}'";
        if (options.ConnectTimeout is { } timeout && (timeout < TimeSpan.FromMilliseconds(100) || timeout > TimeSpan.FromMinutes(2)))
        {
            failures.Add(string.Create(CultureInfo.InvariantCulture, $"{prefix}: {nameof(options.ConnectTimeout)} is {timeout}; it must be between 100 ms and 2 minutes."));
        }

        if (options.MaxConnections is { } max && max is < 1 or > 1_000_000)
        {
            failures.Add(string.Create(CultureInfo.InvariantCulture, $"{prefix}: {nameof(options.MaxConnections)} is {max}; it must be between 1 and 1,000,000."));
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}

/// <summary>
/// Validates at startup the connection settings of every service named under <c>Lodestar:Services</c> (named options
/// are otherwise validated only when first used, on a connection attempt). Runs with the <see cref="LodestarOptions"/>
/// start-up validation.
/// </summary>
internal sealed class ConnectionStartupValidator(IServiceProvider services) : IValidateOptions<LodestarOptions>
{
    public ValidateOptionsResult Validate(string? name, LodestarOptions options)
    {
        var configuration = services.GetService<IConfiguration>();
        if (configuration is null)
        {
            return ValidateOptionsResult.Skip;
        }

        var failures = new List<string>();
        foreach (var service in configuration.GetSection(ConnectionOptionsSetup.ServicesPath).GetChildren())
        {
            if (!service.GetSection(ConnectionOptions.SectionName).Exists())
            {
                continue;
            }

            try
            {
                _ = services.GetRequiredService<IOptionsMonitor<ConnectionOptions>>().Get(service.Key);
            }
            catch (OptionsValidationException ex)
            {
                failures.AddRange(ex.Failures);
            }
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
