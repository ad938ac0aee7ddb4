using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Lodestar.Health.Internal;

/// <summary>
/// Binds a service's health settings from <c>Lodestar:Services:&lt;service&gt;:OutlierDetection</c>,
/// <c>:HealthChecks</c> and <c>:CircuitBreaker</c> when an <see cref="IConfiguration"/> is registered; the options are
/// named after the service.
/// </summary>
internal sealed class HealthOptionsSetup(IServiceProvider services)
    : IConfigureNamedOptions<OutlierDetectionOptions>, IConfigureNamedOptions<HealthCheckOptions>, IConfigureNamedOptions<CircuitBreakerOptions>
{
    public const string ServicesPath = LodestarOptions.SectionName + ":Services";

    public void Configure(OutlierDetectionOptions options) => Configure(Options.DefaultName, options);

    public void Configure(string? name, OutlierDetectionOptions options) => Bind(name, "OutlierDetection", options);

    public void Configure(HealthCheckOptions options) => Configure(Options.DefaultName, options);

    public void Configure(string? name, HealthCheckOptions options) => Bind(name, "HealthChecks", options);

    public void Configure(CircuitBreakerOptions options) => Configure(Options.DefaultName, options);

    public void Configure(string? name, CircuitBreakerOptions options) => Bind(name, "CircuitBreaker", options);

    private void Bind(string? service, string section, object options)
    {
        if (string.IsNullOrEmpty(service))
        {
            return;
        }

        services.GetService<IConfiguration>()?.GetSection(ServicesPath).GetSection(service).GetSection(section).Bind(options);
    }
}

/// <summary>
/// Validates at startup the health settings of every service named under <c>Lodestar:Services</c> (named options are
/// otherwise validated only when first used, on the request path). Runs with the <see cref="LodestarOptions"/>
/// start-up validation.
/// </summary>
internal sealed class HealthStartupValidator(IServiceProvider services) : IValidateOptions<LodestarOptions>
{
    public ValidateOptionsResult Validate(string? name, LodestarOptions options)
    {
        var configuration = services.GetService<IConfiguration>();
        if (configuration is null)
        {
            return ValidateOptionsResult.Skip;
        }

        var failures = new List<string>();
        foreach (var service in configuration.GetSection(HealthOptionsSetup.ServicesPath).GetChildren())
        {
            Check<OutlierDetectionOptions>(service, "OutlierDetection", failures);
            Check<HealthCheckOptions>(service, "HealthChecks", failures);
            Check<CircuitBreakerOptions>(service, "CircuitBreaker", failures);
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    private void Check<T>(IConfigurationSection service, string section, List<string> failures)
        where T : class
    {
        if (!service.GetSection(section).Exists())
        {
            return;
        }

        try
        {
            _ = services.GetRequiredService<IOptionsMonitor<T>>().Get(service.Key);
        }
        catch (OptionsValidationException ex)
        {
            failures.AddRange(ex.Failures);
        }
        catch (InvalidOperationException ex)
        {
            // A value that does not convert (for example "soon" for a TimeSpan): the binder names the key.
            failures.Add(ex.Message);
        }
    }
}
