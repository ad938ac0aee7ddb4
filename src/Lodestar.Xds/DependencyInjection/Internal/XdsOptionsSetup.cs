using Lodestar.Xds.Bootstrap;
using Lodestar.Xds.Bootstrap.Internal;
using Lodestar.Xds.Client.Internal;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Lodestar.Xds.DependencyInjection.Internal;

/// <summary>Binds <see cref="XdsOptions"/> from the <c>Lodestar:Xds</c> configuration section.</summary>
internal sealed class XdsOptionsSetup(IServiceProvider services) : IConfigureOptions<XdsOptions>
{
    public void Configure(XdsOptions options)
    {
        var configuration = services.GetService<IConfiguration>();
        configuration?.GetSection(XdsOptions.SectionName).Bind(options);
    }
}

/// <summary>Checks <see cref="XdsOptions"/> and the bootstrap they lead to at startup.</summary>
internal sealed class XdsOptionsValidator : IValidateOptions<XdsOptions>
{
    private readonly Func<string, string?> _environment;

    public XdsOptionsValidator()
        : this(Environment.GetEnvironmentVariable)
    {
    }

    public XdsOptionsValidator(Func<string, string?> environment)
    {
        _environment = environment;
    }

    public ValidateOptionsResult Validate(string? name, XdsOptions options)
    {
        var failures = new List<string>();
        if (options.ResourceDoesNotExistTimeout < TimeSpan.FromSeconds(1) || options.ResourceDoesNotExistTimeout > TimeSpan.FromMinutes(10))
        {
            failures.Add($"{XdsOptions.SectionName}:{nameof(XdsOptions.ResourceDoesNotExistTimeout)} is {options.ResourceDoesNotExistTimeout}; it must be between 1 second and 10 minutes.");
        }

        if (options.StallTimeout != TimeSpan.Zero && (options.StallTimeout < TimeSpan.FromSeconds(1) || options.StallTimeout > TimeSpan.FromHours(1)))
        {
            failures.Add($"{XdsOptions.SectionName}:{nameof(XdsOptions.StallTimeout)} is {options.StallTimeout}; it must be 0 (off) or between 1 second and 1 hour.");
        }

        if (options.Backoff is null)
        {
            failures.Add($"{XdsOptions.SectionName}:{nameof(XdsOptions.Backoff)} is null.");
        }
        else if (options.Backoff.Validate($"{XdsOptions.SectionName}:{nameof(XdsOptions.Backoff)}") is { } backoff)
        {
            failures.Add(backoff);
        }

        try
        {
            var bootstrap = XdsBootstrapParser.Load(options, _environment);
            foreach (var server in bootstrap.Servers)
            {
                // Every server may carry the token (a fallback too), so each must keep it off clear-text links.
                if (XdsTransport.CheckTokenPolicy(server, options.TokenPath) is { } token)
                {
                    failures.Add(token);
                }
            }
        }
        catch (XdsBootstrapException ex)
        {
            failures.Add(ex.Message);
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
